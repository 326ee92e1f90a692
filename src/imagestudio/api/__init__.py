"""The HTTP API: OpenAI-compatible image routes, the native job API, history and system routes.

``create_app(settings)`` builds the FastAPI app; the routes are thin and use the services on
``app.state.services`` (studio, job queue, history store).
"""

from imagestudio.api.app import create_app

__all__ = ["create_app"]
