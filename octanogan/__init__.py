"""octanogan: unsupervised anomaly detection in retinal OCT (AnoGAN / f-AnoGAN).

Pipeline: volume -> patches -> model -> anomaly maps -> metrics -> report.
Importing the package is cheap; torch and MONAI are imported only by the stages that need them.
"""

__version__ = "0.1.0"
