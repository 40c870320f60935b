"""A first-visit welcome and guided lessons of multiscale generation, for a class in front of the dashboard.

Each lesson is a short text in the papers' terms, what to notice, and the dashboard state that shows it (tab,
section, noise, schedule, samplers, λ: the URL state). ``LessonsPanel`` steps forward and back through them and puts
the session in each one's state; the welcome is shown until it is dismissed, which a cookie remembers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import panel as pn

WELCOME_COOKIE = "emulator_studio_welcomed"  # set in the browser when the welcome is dismissed
CHOOSE = "Choose a lesson…"
WELCOME = """### Welcome to Emulator Studio

A studio for **generative emulators of multiscale physical fields**: how noise of different spectra becomes
Kolmogorov flow, a quasi-geostrophic jet or Allen–Cahn domains, how many steps each sampler needs, and how a
learned emulator drifts over long rollouts and is pulled back.

**Start here**: the *Lessons* below put the dashboard in the state that shows one idea at a time, with what to
notice. Or open any tab: *Data* shows the fields, *Interpolant* how noise turns into data, *Sample* and
*Compare* the samplers, *Train*, *Rollout* and *Super-resolution* run real models in the background.

The documentation is in the project's `docs/` folder: `docs/dashboard.md` (every control), `docs/science.md`
(the five papers' methods)."""


@dataclass(frozen=True)
class Lesson:
    """One idea: its title, a short text in the papers' terms, what to notice, and the state that shows it
    (``studio``: the Studio's own settings; ``noise``, ``schedule``, ``sampler_a``, ``sampler_b``: their
    parameters)."""

    title: str
    text: str
    notice: str
    studio: dict
    noise: dict = field(default_factory=dict)
    schedule: dict = field(default_factory=dict)
    sampler_a: dict = field(default_factory=dict)
    sampler_b: dict = field(default_factory=dict)


LESSONS = (
    Lesson("White noise needs many steps on multiscale data",
           "Paper 000: the interpolant x_t = α(t) x0 + β(t) x1 mixes noise x0 into data x1. With *white* noise every "
           "wavenumber k gets the same noise, but the data's power falls steeply with k, so the fine scales stay "
           "buried in noise until t ≈ 1, and the drift that must resolve them there grows like 1/(1 − t): a stiff "
           "ODE that needs many steps.",
           "the signal-to-noise map over (t, k): the high-k rows turn from noise to signal only at the very end.",
           studio={"tab": "Interpolant", "section": "Along the path"}, noise={"kind": "white"},
           schedule={"kind": "linear"}),
    Lesson("Matched noise decides every scale at once",
           "Paper 000's remedy: noise whose spectrum matches the data's. Then signal and noise share each "
           "wavenumber's variance, and every scale crosses from noise to signal at the same t: the drift stays "
           "bounded and a few steps suffice.",
           "the signal-to-noise map is now flat in k; under *Drift per noise*, the stiffness of matched noise stays "
           "small while white noise's blows up near t = 1.",
           studio={"tab": "Interpolant", "section": "Along the path"}, noise={"kind": "matched"},
           schedule={"kind": "linear"}),
    Lesson("ODE against SDE on the same seed",
           "Papers 000 and 001: the probability-flow ODE dX = b dt and the SDE dX = [b + ε s] dt + √(2ε) dW share the "
           "path's marginals. With few steps the ODE's discretization error is not corrected; the SDE's noise and "
           "score pull the sample back toward the data's distribution.",
           "with 8 steps on white noise, sampler B (SDE) has the lower high-band error: its spectrum follows the "
           "data's at high k where the ODE's falls off. Both start from the same noise seed.",
           studio={"tab": "Compare"}, noise={"kind": "white"}, schedule={"kind": "linear"},
           sampler_a={"method": "ode", "steps": 8}, sampler_b={"method": "sde", "steps": 8}),
    Lesson("Schedules in high dimension",
           "Paper 003: in d dimensions a two-mode mixture has a high-level feature (the mode weight p) decided early "
           "and a low-level one (the within-mode variance σ²) decided late. A uniform time grid spends its steps "
           "where neither is decided; time dilation puts them where each is.",
           "in the table, uniform VP recovers σ² but not p, uniform VE p but not σ², and the dilated schedules both; "
           "*Sweep* shows the uniform grids' steps growing like √d while the dilated ones stay flat.",
           studio={"tab": "Interpolant", "section": "High dimension (paper 003)"}),
    Lesson("Coarse-graining and super-resolution across λ",
           "Paper 002: the forward process dx = a Δx dλ + b dW damps mode k by e^(μ_k λ) and adds noise, so fine "
           "scales go first as λ grows. A learned predictor integrates back from λ to 0 and restores them.",
           "move *Diffusion scale λ*: the coarse input loses its fine scales; press *Super-resolve* and compare the "
           "three spectra: the output's high band returns toward the truth's.",
           studio={"tab": "Super-resolution", "lam": 0.1}),
    Lesson("Rolling out an emulator, watching it drift, refining it",
           "Paper 004: an emulator applied to its own output again and again accumulates error; the small scales "
           "drift first. A refiner (the spectral-estimate Thermalizer, or the self-refining SNS denoiser) pulls the "
           "states back toward the data's distribution every few steps.",
           "press *Roll out*: the spectrum-vs-time image shows the high band fading for the plain emulator; pick a "
           "*Refiner* and roll out again to see it held.",
           studio={"tab": "Rollout"}),
)


def apply(studio, lesson: Lesson) -> None:
    """Put ``studio`` in the lesson's state: the configs first, then the Studio's own settings (the tab last, so
    the view it opens is drawn in the new state)."""
    for name in ("noise", "schedule", "sampler_a", "sampler_b"):
        values = getattr(lesson, name)
        if values:
            getattr(studio, name).param.update(**values)
    settings = {key: value for key, value in lesson.studio.items() if key != "tab"}
    if settings:
        studio.param.update(**settings)
    studio.tab = lesson.studio["tab"]


class LessonsPanel(pn.viewable.Viewer):
    """The welcome (until dismissed) and the lessons: a lesson's text and what to notice, with Previous / Next."""

    def __init__(self, studio, welcomed: bool, **params):
        super().__init__(**params)
        self.studio = studio
        self.welcome = pn.pane.Markdown(WELCOME, name="welcome", sizing_mode="stretch_width")
        self.dismiss = pn.widgets.Button(label="Got it", button_type="primary", width=100)
        self.dismiss.js_on_click(code=f"document.cookie = '{WELCOME_COOKIE}=1; max-age=31536000; path=/; "
                                      "SameSite=Strict';")
        self.dismiss.on_click(lambda _: setattr(self.welcome_card, "visible", False))
        self.welcome_card = pn.Column(self.welcome, self.dismiss, visible=not welcomed, name="welcome-card",
                                      sizing_mode="stretch_width", styles={"border-bottom": "1px solid #ddd"})
        titles = {f"{i + 1}. {lesson.title}": i for i, lesson in enumerate(LESSONS)}
        self.choice = pn.widgets.Select(label="Lessons", options={CHOOSE: -1, **titles}, value=-1, width=380)
        self.choice.param.watch(lambda event: self.open(event.new), "value")
        self.previous = pn.widgets.Button(label="◀ Previous", width=110, disabled=True)
        self.next = pn.widgets.Button(label="Next ▶", width=110)
        self.previous.on_click(lambda _: self.step(-1))
        self.next.on_click(lambda _: self.step(+1))
        self.text = pn.pane.Markdown("", name="lesson-text", sizing_mode="stretch_width")

    def step(self, by: int) -> None:
        self.choice.value = min(max(self.choice.value + by, 0), len(LESSONS) - 1)

    def open(self, index: int) -> None:
        """Show lesson ``index`` and put the dashboard in its state (−1: none)."""
        if index < 0:
            self.text.object, self.previous.disabled, self.next.disabled = "", True, False
            return
        lesson = LESSONS[index]
        self.previous.disabled, self.next.disabled = index == 0, index == len(LESSONS) - 1
        self.text.object = (f"**Lesson {index + 1} of {len(LESSONS)}: {lesson.title}.** {lesson.text}\n\n"
                            f"**What to notice:** {lesson.notice}")
        self.studio.safely(lambda: apply(self.studio, lesson))

    def __panel__(self):
        return pn.Column(self.welcome_card, pn.Row(self.choice, self.previous, self.next, align="end"), self.text,
                         sizing_mode="stretch_width")
