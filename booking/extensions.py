"""Flask extensions, created unbound here and bound in ``create_app``."""

from __future__ import annotations

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from booking.models.base import Base
from booking.web.openapi import PlatformApi

db = SQLAlchemy(model_class=Base, engine_options={"future": True})
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
api = PlatformApi()
# Per client address; storage from RATELIMIT_STORAGE_URI (memory:// by
# default: per process; use redis:// when several workers must share counts).
limiter = Limiter(key_func=get_remote_address, default_limits=[])
