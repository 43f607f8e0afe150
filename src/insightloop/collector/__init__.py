"""The HTTP collector: Segment's HTTP Tracking API in front of the durable log.

``create_app(config, log)`` builds the Starlette app; ``serve(config)`` runs it on uvicorn.
Each accepted request becomes one ``collected.CollectedBatch`` log record, and is
acknowledged only once that record is durable.
"""

from insightloop.collector.app import create_app
from insightloop.collector.server import serve

__all__ = ["create_app", "serve"]
