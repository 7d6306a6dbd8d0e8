"""The API's routers: each module here exposes ``router`` (an APIRouter); the app includes
every one (runtime/api/app.py)."""
