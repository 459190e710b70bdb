"""The example project of ml_assets, a user's package like any other: churn on a simulated world
(daily files, late labels, drift on demand) and two static problems on data scikit-learn ships."""
