"""How a session's tabs are shown: each view built on its tab's first visit on the page builder thread (models
included, so the event loop stays free), attached on the session's thread, laid out once and shown again; each
tab's sidebar made once and swapped in. What a tab holds comes from the registry (``app.tabs``)."""
from __future__ import annotations

from typing import NamedTuple

import panel as pn

from app.busy import PAGE_BUILDER, in_background, modelled_for, release
from app.tabs import STRETCH, TABS, dataset_controls


class Opened(NamedTuple):
    """A tab's view and its sidebar controls, built (models included) on the page builder thread."""

    view: list
    controls: list


class TabHost:
    """The built views of one session (``views``), their panes in the page's tabs and the sidebar they share."""

    def __init__(self, studio):
        self.studio = studio
        self.views: dict[str, pn.viewable.Viewer] = {}
        self.layouts: dict[str, pn.viewable.Viewable] = {}  # each view's layout, made once (``__panel__``)
        self.sidebars: dict[tuple, list] = {}  # each built tab's controls (``sidebar_key``), made once
        self.opening: set[str] = set()  # tabs whose view is being built aside (on the page builder thread)
        self.sidebar, self.sidebar_tab = pn.Column(**STRETCH), None
        self.panes = {name: pn.Column(pn.pane.Markdown(f"Opening {name}…"), min_height=300, **STRETCH)
                      for name in TABS}
        self.tabs = pn.Tabs(*self.panes.items(), dynamic=True, **STRETCH)  # only the open tab is in the page

    def view(self, name: str) -> pn.viewable.Viewer:
        """The view of tab ``name``, built (and, for a generation tab, drawn) the first time it is asked for."""
        if name not in self.views:
            tab, studio = TABS[name], self.studio
            view = tab.build(studio)
            if tab.draw is not None:
                studio.safely(lambda: tab.draw(studio, view))
            if hasattr(view, "on_finish"):
                view.on_finish = studio.job_finished
            self.views[name] = view
        return self.views[name]

    def open(self, name: str) -> None:
        """Show tab ``name``'s view (building it under a loading overlay on the first visit) and its controls in
        the sidebar."""
        pane = self.panes[name]
        for other, shown in self.panes.items():  # a view left in a hidden tab came back with stylesheets pointing
            if other != name and other in self.views and len(shown):  # at Panel's CDN (unreachable offline):
                shown[:] = []  # detached here, it is rendered afresh when its tab opens again
        if name in self.views:
            if list(pane) != [self.layout(name)]:
                pane[:] = [self.layout(name)]
            self.show_controls(name)
        elif name not in self.opening:
            self.opening.add(name)
            pane.loading = True
            in_background(lambda: self._build_aside(name), lambda opened: self._attach(name, opened),
                          lambda reason: self._build_failed(name, reason), pool=PAGE_BUILDER)

    def _build_aside(self, name: str) -> Opened:
        """On the page builder thread (one build at a time: it has one thread), so every other session's live
        stream keeps updating while this one opens."""
        view = self.view(name)
        controls = self.sidebars[self.sidebar_key(name)] = self.controls(name)
        self.layouts[name], = layout = modelled_for(self.panes[name], [view])
        return Opened(view=layout, controls=modelled_for(self.sidebar, controls))

    def layout(self, name: str) -> pn.viewable.Viewable:
        """Tab ``name``'s view as laid out the first time: shown again, not made anew (a view's ``__panel__`` makes
        widgets linked to its parameters, which would stay linked)."""
        if name not in self.layouts:
            self.layouts[name] = pn.panel(self.views[name])
        return self.layouts[name]

    def _attach(self, name: str, opened: Opened) -> None:
        """On the session's thread: put a freshly built view's controls in the sidebar, then, a tick later (two
        shorter holds of the event loop), the view in its tab, if that tab is still open. The controls come first:
        one used the moment the view shows is not replaced under it."""
        if self.studio.tab != name:
            self.attach_view(name, opened.view)
            release(self.sidebar, opened.controls)
            return
        self.sidebar[:], self.sidebar_tab = opened.controls, name
        document = pn.state.curdoc
        if document is None or document.session_context is None:
            self.attach_view(name, opened.view)
        else:
            document.add_next_tick_callback(lambda: self.attach_view(name, opened.view))

    def attach_view(self, name: str, view: list) -> None:
        """The built view into its tab (released if the tab was left meanwhile); redraws that waited run now."""
        self.opening.discard(name)
        pane = self.panes[name]
        with pn.io.hold():
            pane.loading = False
            if self.studio.tab == name:
                pane[:] = view
            else:
                release(pane, view)
        self.studio.redraw_pending()

    def _build_failed(self, name: str, reason: str) -> None:
        self.opening.discard(name)
        self.panes[name].loading = False
        self.studio.error.object, self.studio.error.visible = f"**{name} could not open:** {reason}", True
        self.studio.redraw_pending()

    def show_controls(self, name: str, again: bool = False) -> None:
        """Put tab ``name``'s controls in the sidebar, unless they are there already (replacing live widgets
        would drop a click that is on its way); ``again`` when the open tab's own section changed. The controls
        are made once per tab (and Interpolant section) and shown again: widgets made from parameters stay linked
        to them, so making new ones at every visit would leave every old one updating with each change."""
        if again and self.studio.tab != name:
            return
        key = self.sidebar_key(name)
        if key not in self.sidebars:
            self.sidebars[key] = self.controls(name)
        if self.sidebar_tab != name or again:
            self.sidebar[:], self.sidebar_tab = self.sidebars[key], name

    def sidebar_key(self, name: str) -> tuple:
        """Which sidebar tab ``name`` shows: a view with sections that differ (the Interpolant's) says whether its
        open one uses the dataset, noise and schedule."""
        return name, getattr(self.views.get(name), "uses_generation_settings", None)

    def controls(self, name: str) -> list:
        """The sidebar for tab ``name``: only the controls that act on it (each widget made only where shown, since
        a widget made from a parameter stays linked to it)."""
        view = self.views.get(name)
        return dataset_controls(self.studio) if view is None else TABS[name].sidebar(self.studio, view)
