"""One module per user-visible operation; each is one function with keyword-only arguments that returns a small
named result. The CLI (``engine.cli``) adds parsing, background jobs (``engine.jobs``) add events; neither
re-dispatches. See docs/architecture.md.

==================  ==============================  ==============================
operation           function                        result
==================  ==============================  ==============================
train               ``train.train``                 ``TrainResult``
sample              ``sample.sample``               ``SampleResult``
rollout             ``rollout.run_rollout``         ``RolloutResult``
superres            ``superres.run_superres``       ``SuperresResult``
data grf/kolm./L96  ``generate_data.generate_data`` ``DataResult``
data coarse         ``coarse_data.coarse_data``     ``CoarseResult``
==================  ==============================  ==============================
"""
