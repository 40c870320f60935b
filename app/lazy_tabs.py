"""Tabs whose contents are built on their first visit, so a view with several sections opens as fast as its
first one."""
from __future__ import annotations

from typing import Callable

import panel as pn
import param

from app.busy import busy


class LazyTabs(pn.viewable.Viewer):
    """``builders`` maps each tab's title to a function that builds its content; the first is built at once, the
    others under a loading overlay when first opened. Only the open tab is in the page (``dynamic``), and a hidden
    tab's content is detached: re-rendered afresh when it opens again, as the Studio does with its own tabs."""

    active = param.String(doc="the open tab's title")
    shown = param.String(doc="the title of the tab whose content is in the page (set once it is built)")

    def __init__(self, builders: dict[str, Callable[[], object]], **params):
        titles = list(builders)
        super().__init__(active=titles[0], **params)
        self.builders, self.built = builders, {}
        self.panes = {title: pn.Column(pn.pane.Markdown(f"Opening {title}…"), min_height=200,
                                       sizing_mode="stretch_width") for title in titles}
        self.tabs = pn.Tabs(*self.panes.items(), dynamic=True, sizing_mode="stretch_width")
        self.tabs.param.watch(lambda event: setattr(self, "active", titles[event.new]), "active")
        self.built[self.active] = builders[self.active]()  # at once: its owner draws into it next
        self.panes[self.active][:] = [self.built[self.active]]
        self.shown = self.active

    @param.depends("active", watch=True)
    def _open(self) -> None:
        self.tabs.active = list(self.builders).index(self.active)
        title, pane = self.active, self.panes[self.active]
        for other, shown in self.panes.items():
            if other != title and other in self.built and len(shown):
                shown[:] = []
        if title in self.built:
            if list(pane) != [self.built[title]]:
                pane[:] = [self.built[title]]
            self.shown = title
            return

        def build() -> None:
            if title not in self.built:
                self.built[title] = self.builders[title]()
            if self.active == title:
                pane[:] = [self.built[title]]
                self.shown = title

        busy([pane], build)

    def __panel__(self):
        return self.tabs
