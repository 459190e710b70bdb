"""Resources: the landing zone and the table/record storage behind the assets."""

from ml_assets.io.io_managers import JsonIOManager, ParquetIOManager
from ml_assets.sources.landing import LandingZoneResource

__all__ = ["JsonIOManager", "LandingZoneResource", "ParquetIOManager"]
