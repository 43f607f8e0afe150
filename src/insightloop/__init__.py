"""insightloop: InsightLoop's data collection and analysis pipeline."""

__version__ = "0.1.0"
