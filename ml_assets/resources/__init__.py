"""Resources: the landing zone and the table/record storage behind the assets."""

from ml_assets.resources.io_managers import JsonIOManager, ParquetIOManager
from ml_assets.resources.landing import LandingZoneResource

__all__ = ["JsonIOManager", "LandingZoneResource", "ParquetIOManager"]
