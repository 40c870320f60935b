import pytest

from engine.config import GRFConfig, NoiseConfig, SamplerConfig, ScheduleConfig, TrainingConfig, options


@pytest.mark.parametrize("cls,name,value,fragment", [
    (NoiseConfig, "exponent", 20.0, "at most 12.0"),
    (NoiseConfig, "kind", "pink", "does not accept 'pink'"),
    (SamplerConfig, "steps", 0, "at least 1"),
    (SamplerConfig, "eps", -0.1, "at least 0.0"),
    (ScheduleConfig, "r", -1.0, "at least 1e-12"),
    (TrainingConfig, "lr", 2.0, "at most 1.0"),
    (GRFConfig, "size", 4, "at least 8"),
])
def test_invalid_values_name_the_option_and_the_range(cls, name, value, fragment):
    with pytest.raises(ValueError) as err:
        cls(**{name: value})
    assert f"{cls.__name__}.{name}" in str(err.value) and fragment in str(err.value)


def test_options_are_plain_values_without_the_name():
    values = options(SamplerConfig(steps=8))
    assert values["steps"] == 8 and "name" not in values
