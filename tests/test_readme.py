"""The README's Python example runs as written."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    """The block after "From Python:" installs the built-in sets into a fresh folder and samples 64 GRFs."""
    text = README.read_text()
    block = re.search(r"From Python:\n\n```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.setenv("EMULATOR_STUDIO_DATA", str(tmp_path))
    exec(compile(block, "README.md", "exec"), {})
    nfe, errors = capsys.readouterr().out.split(" ", 1)
    assert nfe == "16" and "spectral_error" in errors
