"""app/panel_internals.py is the one door to Panel's, Bokeh's and Tornado's private names: the installed Panel must
be a tested minor version, and every private name the door uses must be there."""
import panel as pn
from bokeh.server.contexts import BokehSessionContext
from tornado.web import Application

from app.panel_internals import TESTED_PANEL, rendered_models, tornado_application


def test_the_installed_panel_is_a_tested_version():
    minor = ".".join(pn.__version__.split(".")[:2])
    assert minor in TESTED_PANEL, (
        f"Panel {pn.__version__} is untested: app/panel_internals.py uses its private names (checked on "
        f"{', '.join(TESTED_PANEL)}); check each there, then add {minor} to TESTED_PANEL and to pyproject.toml")


def test_every_private_name_the_door_uses_is_there():
    markdown = pn.pane.Markdown("x")
    root = markdown.get_root()
    assert root.ref["id"] in rendered_models(markdown)
    assert callable(markdown._get_model) and callable(markdown._cleanup)
    assert root.ref["id"] in pn.state._views
    assert "_document" in BokehSessionContext.__init__.__code__.co_names
    server = pn.serve({"/": lambda: markdown}, port=0, start=False, show=False)
    try:
        assert isinstance(tornado_application(server), Application)
        assert callable(tornado_application(server).find_handler)
    finally:
        server.stop()
