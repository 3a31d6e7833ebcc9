"""Safety rules: no remote code, no pickle loads, and no tokens or local paths in executed outputs."""

from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from hubhelpers.tooling.conventions import scan_outputs, unsafe_code

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("source, label", [
    ("AutoModel.from_pretrained(p, trust_remote_code=True)", "trust_remote_code=True"),
    ('kwargs = {"trust_remote_code": True}', "trust_remote_code=True"),
    ("state = pickle.load(handle)", "pickle.load"),
    ("state = torch.load(path)", "torch.load without weights_only=True"),
])
def test_unsafe_loading_is_named(source, label):
    assert unsafe_code(source) == [label]


def test_safe_loading_passes():
    assert unsafe_code("torch.load(path, weights_only=True); X.from_pretrained(p, trust_remote_code=False)") == []


def test_package_never_enables_remote_code_or_pickle():
    sources = [p for p in (ROOT / "hubhelpers").rglob("*.py") if p.name != "conventions.py"]
    assert len(sources) > 10
    found = {str(p.relative_to(ROOT)): unsafe_code(p.read_text()) for p in sources}
    assert {path: labels for path, labels in found.items() if labels} == {}


def _executed(*texts: str, traceback: str | None = None):
    nb = new_notebook()
    cell = new_code_cell("x")
    cell.outputs = [new_output("stream", name="stdout", text=t) for t in texts]
    if traceback:
        cell.outputs.append(new_output("error", ename="E", evalue="e", traceback=[traceback]))
    nb.cells = [cell]
    return nb


def test_scan_outputs_finds_tokens_secrets_and_paths():
    assert scan_outputs(_executed("loss 0.3", "saved to build/figures/a.png", "see https://x.org/tmp/a")) == []
    assert scan_outputs(_executed("token hf_" + "a1" * 15)) == ["cell 0 output contains an access token"]
    assert scan_outputs(_executed("key=sesame-1234"), secrets=("sesame-1234",)) == [
        "cell 0 output contains an access token"]
    problems = scan_outputs(_executed("wrote /home/alice/llm-hub/build/x.json"), secrets=("",))
    assert problems == ["cell 0 output contains a local path '/home/alice/llm-hub/build/x.json'"]
    assert scan_outputs(_executed(traceback='File "/work/main/.venv/lib/x.py", line 3'))
