# llm-hub: `make course` runs every notebook, `make test` runs lint + unit tests + notebooks under nbval.
# Both create the environment first if it is missing (the stamp file makes the second run skip it).

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Extra papermill arguments for `make course`, e.g. make course P="-p SEED 1"
P      ?=
# Notebooks run at once by make course, seeds and nbval (longest first; J=1: one after another). Every notebook kernel
# gets one math thread whatever J (hubhelpers.tooling.course.THREADS_PER_NOTEBOOK), so J changes no figure.
J      ?= 2
# What every kernel nbval starts runs with: the course runner's settings (hubhelpers.tooling.course.kernel_env();
# tests/test_course_runner.py checks that the two agree).
KERNEL_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=33554432 \
              MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=67108864

# Notebooks run offline and headless.
NB_ENV := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 MPLBACKEND=Agg
# For the checks: the network cut for real (a new network namespace with loopback only, needs util-linux's unshare
# and iproute2) and the offline variables removed, so nothing in the course may reach for the network.
NO_NET := unshare -rn sh -c 'ip link set lo up && exec "$$@"' sh env -u HF_HUB_OFFLINE -u TRANSFORMERS_OFFLINE \
          -u HF_DATASETS_OFFLINE MPLBACKEND=Agg

.PHONY: install course seeds models bench test lint unit nbval browser-test book book-test lab sync-notebooks lock latest base-model base-model-t5 card-emissions clean distclean

install: $(STAMP)

# requirements.lock pins everything, the package's extras included: course (papermill, nbval, JupyterLab: the course
# machinery in hubhelpers.tooling) and dev (pytest, ruff); the package itself goes in editable, with both extras named.
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -r requirements.lock
	$(PY) -m pip install -e ".[course,dev]" --no-deps
	$(PY) -m ipykernel install --sys-prefix --name llm-hub --display-name "Python (llm-hub)"
	touch $@

course: $(STAMP)
	$(NB_ENV) $(PY) -m hubhelpers.tooling.course --jobs $(J) $(P)

# The whole course once per sampling seed (data draws, initialisation, shuffling): every band must hold at every
# seed, so no effect rests on a lucky seed; with the network cut, like nbval. Writes build/seeds/seed<n>/ and
# build/seeds/REPORT.md + spread.json: each banded figure's value per seed, min / median / max, its smallest margin to
# the band's edge (failures first, then those within 5%). Each seed costs a course run, so .ci/run calls it with one,
# SEEDS=1, after make test, whose nbval run executes the defaults (SEED 0). E.g. make seeds SEEDS="5 6".
SEEDS  ?= 1 2 3 4
seeds: $(STAMP)
	$(NO_NET) $(PY) -m hubhelpers.tooling.seeds --jobs $(J) --seeds $(SEEDS)

# Every notebook on three model directories built here from configs (no download): the shipped weights re-housed
# in Mistral, a random GPT-2 with its own tokenizer, a random 32k-vocabulary GQA Qwen2. Writes build/models/MATRIX.md
# and matrix.json; about three course runs, so not in .ci/run (tests/test_matrix.py runs two notebooks of it).
# M="--models random-gpt2 --only 05 08" etc.
M      ?=
models: $(STAMP)
	$(NO_NET) $(PY) -m hubhelpers.tooling.matrix $(M)

# Every notebook, then training / generation / retrieval throughput: a table against the budgets,
# build/bench.json (compared with the previous one), and README's CPU-time column. B="--skip-course" etc.
B      ?=
bench: $(STAMP)
	$(NB_ENV) $(PY) -m hubhelpers.tooling.bench $(B)

test: lint unit nbval

lint: $(STAMP)
	$(VENV)/bin/ruff check .

unit: $(STAMP)
	$(NB_ENV) $(PY) -m pytest tests

# Every notebook, as committed, in a fresh kernel, with the network cut: the whole course needs no network. J notebooks
# at once (pytest-xdist; loadfile keeps a notebook's cells on one worker, whose kernel they share), one thread each.
nbval: $(STAMP)
	$(NO_NET) $(KERNEL_ENV) $(PY) -m pytest -n $(J) --dist loadfile --nbval-lax --nbval-current-env notebooks/

# A real client: JupyterLab + headless Chromium (Debian's package; Playwright drives it, no browser download).
CHROMIUM_INSTALLED := command -v chromium >/dev/null || { apt-get update -q && apt-get install -y -q \
                      --no-install-recommends chromium; }
browser-test: $(STAMP)
	$(CHROMIUM_INSTALLED)
	$(NB_ENV) $(PY) -m pytest tests_browser --ignore=tests_browser/test_book.py

# The course as a website in build/book/: Sphinx + MyST-NB render build/executed/ (make course's executed notebooks,
# outputs and plots included; a notebook whose executed copy is missing or older than its source runs first), with the
# network cut. book-test opens every page in headless Chromium (images, links, console, provenance, search).
book: $(STAMP)
	$(NO_NET) $(PY) -m hubhelpers.tooling.book --jobs $(J)

book-test: book
	$(CHROMIUM_INSTALLED)
	$(NO_NET) $(PY) -m pytest tests_browser/test_book.py

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

# Rewrite every notebook's Colab badge and Colab install cell from [tool.llm-hub] in pyproject.toml.
sync-notebooks: $(STAMP)
	$(PY) -m hubhelpers.tooling.sync

# Regenerate requirements.lock from an environment (default: .venv; LOCK_FROM=.venv-latest/bin/python after make latest).
LOCK_FROM ?= $(PY)
lock: $(STAMP)
	$(PY) -m hubhelpers.tooling.releases lock --python $(LOCK_FROM)

# The next release, before learners meet it: .venv-latest with the newest transformers, peft, trl, bitsandbytes,
# datasets, accelerate, langchain*, chromadb, sentence-transformers, papermill and nbval (torch stays at the lock's CPU
# build), then the course there with the network cut, into build/latest/, and build/latest/DRIFT.md: versions against
# the lock, notebooks that failed, banded figures that moved beyond their spread over make seeds, new warnings.
# Compares with the lock's last make course (build/). Not in .ci/run.
# When everything passes there: make lock LOCK_FROM=$(LATEST)/bin/python.
# L="--seed 1" runs it at seed 1 and compares with make seeds' run there (no extra course run on the lock).
LATEST := .venv-latest
L      ?=
latest: $(STAMP)
	$(PY) -m hubhelpers.tooling.releases install --venv $(LATEST)
	$(NO_NET) $(LATEST)/bin/python -m hubhelpers.tooling.releases run $(L)

# Re-train the embedded TinyWorld base model shipped in hubhelpers/assets/tinyworld/.
base-model: $(STAMP)
	$(PY) -m hubhelpers.pretrain

# Until the next `make base-model` (which measures its own emissions with CodeCarbon): the shipped card's
# co2_eq_emissions estimated from its recorded wall time and the power of a short probe of the same training.
card-emissions: $(STAMP)
	$(PY) -c "from hubhelpers import models, pretrain; print(pretrain.estimate_card_emissions(models.shipped_model_dir()))"

# Re-train the embedded encoder-decoder (T5, span corruption) shipped in hubhelpers/assets/tinyworld-t5/ (notebook 17).
base-model-t5: $(STAMP)
	$(PY) -m hubhelpers.pretrain_t5

clean:
	rm -rf build .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
	find . -path ./$(VENV) -prune -o -name .ipynb_checkpoints -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(LATEST) *.egg-info
