"""insightloop.processor: the stream processor (log → raw → cleaned)."""
