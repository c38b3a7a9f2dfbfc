# kaggle_style: `make folds train ensemble submit` on a competition's folder (DATA=path; TASK=its task
# file for another competition than Conser-vision).
# Every target is a file, so make rebuilds only what changed. `make help` lists the targets:
# this file holds the pipeline's (15 at most); make/more.mk the user's other tools (tuning,
# checks, housekeeping); benchmarks/Makefile the benchmarks, the lent-GPU check and the
# developers' test targets. Both are included below, so every target runs from here.
# SET names the models to train (configs/sets/NAME.yaml: demo, fast, leaderboard); TORCH=keep
# installs over a GPU box's own CUDA torch instead of the pinned CPU-capable build.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
KS := $(VENV)/bin/kaggle-style
STAMP := $(VENV)/.installed

DATA ?= data/demo
OUT ?= .
SEED ?= 0
N_SPLITS ?= 5
FOLDS := $(OUT)/folds/folds.csv
# The demo ships its simulated detections; a real DATA folder may be read-only: write beside OUT.
DETECTIONS ?= $(if $(filter data/demo,$(DATA)),$(DATA)/detections.json,$(OUT)/detections/detections.json)
# DATA may hold spaces: prerequisites name it escaped (DATA_DEP), recipes quote it.
space := $(subst ,, )
DATA_DEP = $(subst $(space),\$(space),$(DATA))
DETECTOR ?= megadetector-lite
DETECT_ARGS ?=  # e.g. '--num-workers 14 --batch-size 64' on a GPU box
# The shared real data (detector weights, real frames and tables): passed to the benchmarks and
# exported for detect/predict's default weights; the installed package never guesses where it is.
SHARED_DATA ?= $(or $(KAGGLE_STYLE_SHARED_DATA),../shared/data)
SHARED_DATA := $(SHARED_DATA)
export KAGGLE_STYLE_SHARED_DATA := $(abspath $(SHARED_DATA))
DETECTOR_WEIGHTS ?= $(SHARED_DATA)/models/megadetector_lite/yolox_tiny_640_20220528.pth
# TASK=NAME or a task file (configs/tasks/NAME.yaml): another competition's layout, classes and
# metric (docs/how-to/own-competition.md), passed to every stage; empty: the task `folds` recorded
# beside the folds file, else Conser-vision. Another task's facts are asked once: its tables
# (what `folds` reads), its submission format and whether the camera-trap stages apply.
TASK ?=
TASK_ARG = $(if $(TASK),--task $(TASK))
RECORDED_TASK := $(shell sed -n 's/^name: *//p' $(OUT)/folds/folds.task.yaml 2>/dev/null | head -n1)
TASK_SPEC := $(or $(TASK),$(if $(filter-out conservision,$(RECORDED_TASK)),$(OUT)/folds/folds.task.yaml))
ifneq ($(filter-out conservision,$(TASK_SPEC)),)
ifneq ($(wildcard $(KS)),)
TASK_TABLES := $(shell $(KS) task show $(TASK_SPEC) --field tables 2>&1)
ifneq ($(.SHELLSTATUS),0)
$(error TASK=$(TASK_SPEC): $(TASK_TABLES))
endif
FORMAT_FILE := $(shell $(KS) task show $(TASK_SPEC) --field format)
CAMERA_TRAP := $(shell $(KS) task show $(TASK_SPEC) --field camera-trap)
endif
else
TASK_TABLES := train_features.csv train_labels.csv
FORMAT_FILE := submission_format.csv
CAMERA_TRAP := yes
endif
DATA_TABLES = $(addprefix $(DATA_DEP)/,$(TASK_TABLES))
CROPS := $(OUT)/crops/manifest.csv
META ?= $(OUT)/meta/meta.csv
# Detections, crops and info-bar readings only for a task with camera-trap parts.
CAMERA_DEPS = $(if $(filter yes,$(CAMERA_TRAP)),$(1))
RUNS := $(OUT)/runs
CACHE := $(OUT)/cache
SET ?= demo
TORCH ?= pin
# THREADS=N exports OMP_NUM_THREADS=N (torch's CPU threads per process); empty: torch's default.
DEMO_THREADS := $(if $(filter undefined,$(origin THREADS)),1,$(THREADS))
THREADS ?=
ifneq ($(strip $(THREADS)),)
export OMP_NUM_THREADS := $(THREADS)
endif
LAUNCH ?=
GPUS ?=
# A set's models and ensemble config, read once from configs/sets/$(SET).yaml (MODELS=… wins).
SET_FIELD = $(shell test -x $(PY) && $(PY) -m kaggle_style model-set $(SET) --field $(1) 2>/dev/null)
ifeq ($(origin MODELS),undefined)
MODELS := $(call SET_FIELD,models)
endif
ifeq ($(origin ENSEMBLE_CONFIG),undefined)
ENSEMBLE_CONFIG := $(call SET_FIELD,ensemble)
endif
# A bad SET is one clear error, not an empty MODELS.
ifeq ($(strip $(MODELS)),)
ifneq ($(wildcard $(PY)),)
$(error SET=$(SET): $(shell $(PY) -m kaggle_style model-set $(SET) 2>&1 | tail -1))
endif
endif
# MODELS given by hand: every named config is checked now, before folds, detection or crops run.
ifneq ($(filter command line environment,$(origin MODELS)),)
ifneq ($(wildcard $(PY)),)
MODELS_ERROR := $(shell $(PY) -m kaggle_style model-set --check-models $(MODELS) 2>&1 >/dev/null)
ifneq ($(strip $(MODELS_ERROR)),)
$(error MODELS='$(MODELS)': $(MODELS_ERROR))
endif
endif
endif
# LAUNCH="--multi_gpu --num_processes 8": one run over 8 GPUs with DDP (accelerate launch).
TRAIN_CMD = $(if $(LAUNCH),$(VENV)/bin/accelerate launch $(LAUNCH) -m kaggle_style,$(KS)) train
ENSEMBLE ?= ensemble
SUBMISSION := $(OUT)/submissions/$(ENSEMBLE).csv
REPORT := $(OUT)/reports/$(ENSEMBLE)/index.html
QUIET ?= --quiet
TRAIN_ARGS ?=
CONFIG ?= configs/demo-crop.yaml
STUDY ?= $(basename $(notdir $(CONFIG)))
STORAGE ?= sqlite:///$(OUT)/studies/$(STUDY).db
TUNE_FOLDS ?= [0]
TUNE_CMD = $(if $(LAUNCH),$(VENV)/bin/accelerate launch $(LAUNCH) -m kaggle_style,$(KS)) tune
CSV_ONLY ?= 0
YES ?= 0
TRIALS ?= 8
IMAGES ?=
RUN ?= $(RUNS)/$(ENSEMBLE)
SITE_FROM_FOLDER ?= 1
# LAUNCHER=slurm: `train` submits every unfinished (recipe, fold) as a Slurm job array through
# submitit, `tune` starts WORKERS Optuna workers as jobs (docs/how-to/slurm.md); local: the same jobs as
# processes here. Empty: this box trains, as always.
LAUNCHER ?=
PARTITION ?=
GPUS_PER_JOB ?=
TIME ?=
MEM ?=
SLURM_CONFIG ?=
WORKERS ?= 2
# WAIT=1: return when the jobs are done (a failed job: one line naming its log, exit 2).
WAIT ?=
SLURM_ARGS = --launcher $(LAUNCHER) --folder $(OUT)/slurm/%j $(if $(SLURM_CONFIG),--slurm-config \
	$(SLURM_CONFIG)) $(if $(PARTITION),--partition $(PARTITION)) $(if $(GPUS_PER_JOB),--gpus-per-job \
	$(GPUS_PER_JOB)) $(if $(TIME),--time $(TIME)) $(if $(MEM),--mem $(MEM)) $(if $(filter 1,$(WAIT)),--wait)
PORT ?= 8080
# TRACKER=tensorboard|mlflow|wandb|none: where training logs its curves (docs/how-to/tracking.md).
TRACKER ?=
TRACK_SET = $(if $(TRACKER),tracker=$(TRACKER))
.PHONY: help install demo test docs sets folds detect crops meta train ensemble submit report \
	predict

help: ## list the targets
	@echo "pipeline (Makefile):"
	@$(call LIST_TARGETS,Makefile)
	@echo "tuning, checks, housekeeping (make/more.mk):"
	@$(call LIST_TARGETS,make/more.mk)
	@echo "benchmarks, the lent-GPU check, developers' tests (benchmarks/Makefile, run from here):"
	@$(call LIST_TARGETS,benchmarks/Makefile)
	@echo "  variables: DATA=$(DATA) SET=$(SET) (sets: $(basename $(notdir $(wildcard configs/sets/*.yaml))))" \
		"MODELS='$(MODELS)' OUT=$(OUT) N_SPLITS=$(N_SPLITS)"
	@echo "  GPU boxes: make install TORCH=keep (keep the box's CUDA torch); LAUNCH='--multi_gpu" \
		"--num_processes N' (DDP) or GPUS='0 1 …' (one fold per GPU); make gpu-check"
	@echo "  benchmarks (benchmarks/, run from the checkout): bench gpu-check real-check" \
		"real-dry-run cache-bench, shared data from SHARED_DATA=$(SHARED_DATA)"
	@echo "  documentation: make docs, then site/index.html (the sources: docs/)"

# The `target: ... ## what it does` lines of one file.
LIST_TARGETS = grep -hE '^[a-zA-Z_-]+:.*\#\# ' $(1) | \
	awk 'BEGIN {FS = ":.*\#\# "}; {printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@case "$(TORCH)" in pin|keep) ;; *) echo "make install: TORCH=$(TORCH): use pin (the pinned \
		torch from local disk) or keep (this machine's own CUDA torch)"; exit 2;; esac
	test -x $(PY) || $(PYTHON) -m venv $(if $(filter keep,$(TORCH)),--system-site-packages) $(VENV)
	@command -v tesseract >/dev/null || echo "make install: tesseract (the info-bar reader of \
		make meta) is missing; install it with: sudo apt-get install -y tesseract-ocr"
	$(PY) -m pip install -q --upgrade pip
	$(if $(filter keep,$(TORCH)),$(PY) -c "import torch; print('keeping torch', torch.__version__, \
		'cuda', torch.version.cuda)",$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1)
	$(PY) -m pip install -q -e '.[dev,detect,slurm]'
	$(PY) -m pip install -q --no-deps pixeltable-yolox==0.4.3
	$(PY) -m pip install -q --no-deps megadetector==10.0.28 camtrapdp==0.1.0  # the tests' readers
	touch $@

install: $(STAMP) ## create .venv (TORCH=pin: pinned torch from local disk; TORCH=keep: the box's own)

# Two jobs at once: the two demo models train side by side, one single-threaded process per core
# (meta reads the info bars meanwhile); each job's output is printed whole when it ends.
DEMO_JOBS ?= 2
DEMO_SPLITS ?= 3
demo: $(STAMP) ## set up and run everything on the generated demo data (CPU, a few minutes; TASK=boreal: the Kaggle-layout demo)
ifneq ($(filter-out conservision,$(TASK)),)
	$(KS) task demo $(TASK) --work $(OUT) --threads $(or $(THREADS),2)
else
	$(MAKE) -j$(DEMO_JOBS) --output-sync=target submit report DATA=data/demo OUT=$(OUT) SET=demo \
		N_SPLITS=$(DEMO_SPLITS) THREADS=$(DEMO_THREADS) TASK=
	@$(KS) summary $(RUNS)/$(ENSEMBLE) $(SUBMISSION)
	@echo "training curves: $(VENV)/bin/tensorboard --logdir $(RUNS) --host 127.0.0.1"
endif

data/demo/train_features.csv: | $(STAMP)
	$(KS) demo-data --out data/demo --seed $(SEED)

# Written by the same command: under `make -j` the labels wait for it instead of failing below.
data/demo/train_labels.csv: data/demo/train_features.csv ;

# Any other DATA folder is the user's: say what is missing rather than "no rule to make target".
%/train_features.csv %/train_labels.csv:
	@echo "make: $@ not found: DATA='$(DATA)' must be a DrivenData folder (docs/tutorials/real-competition.md:" \
		"Getting the data; \`kaggle-style check-data '$(DATA)'\` says what is missing)"; exit 2

ifneq ($(filter-out conservision,$(TASK_SPEC)),)
$(DATA_TABLES):
	@echo "make: $@ not found: DATA='$(DATA)' must hold the tables of task $(TASK_SPEC)" \
		"($(TASK_TABLES)); \`kaggle-style check-data '$(DATA)' --task $(TASK_SPEC)\` says what is missing"; exit 2
endif


$(FOLDS): $(DATA_TABLES) | $(STAMP)
	$(KS) folds --data "$(DATA)" --out $@ --n-splits $(N_SPLITS) --seed 42 $(TASK_ARG)

folds: $(FOLDS) ## site-grouped, class-stratified folds -> folds/folds.csv

ifeq ($(DETECTIONS),data/demo/detections.json)
# The generator writes the demo's detections: under `make -j` they wait for it, no detector runs.
$(DETECTIONS): data/demo/train_features.csv ;
else
$(DETECTIONS): | $(firstword $(DATA_TABLES)) $(STAMP)
	$(KS) detect --data "$(DATA)" --detector $(DETECTOR) --weights $(DETECTOR_WEIGHTS) --out $@ \
		$(DETECT_ARGS)
endif

detect: $(DETECTIONS) ## run the detector once (the demo data ships simulated detections)

$(CROPS): $(DETECTIONS) | $(STAMP)
	$(KS) crop --detections $< --data "$(DATA)" --out $(OUT)/crops --thresholds 0.05 0.1 0.2 0.35 0.5 --pad 0.1

crops: $(CROPS) ## crops at several thresholds + crops/manifest.csv

# GPUS="0 1 2 3": one process per GPU, each taking the next fold nobody holds (fold locks); the
# last to finish writes the run's files. Several boxes sharing RUNS work the same way.
# A second-round recipe (`pseudo_labels: {from: …}`) needs its source runs first: they print here.
PSEUDO_SOURCES = $(shell test -x $(PY) && $(PY) -m kaggle_style.training.pseudo_labels \
	configs/$(1).yaml --runs-dir $(RUNS) 2>/dev/null)
.SECONDEXPANSION:
$(RUNS)/%/oof.csv: configs/%.yaml $(FOLDS) $(call CAMERA_DEPS,$(CROPS)) $$(call PSEUDO_SOURCES,$$*) | $(STAMP)
	$(if $(GPUS),for g in $(GPUS); do CUDA_VISIBLE_DEVICES=$$g ,)$(TRAIN_CMD) --config $< \
		--name $* --data "$(DATA)" --folds-file $(FOLDS) --runs-dir $(RUNS) $(TASK_ARG) \
		--set $(call CAMERA_DEPS,crops_manifest=$(CROPS)) cache_dir=$(CACHE) $(TRACK_SET) $(TRAIN_ARGS) $(QUIET)$(if $(GPUS), & \
		done; wait)
	@test -f $@ || { echo "$@ not written: folds still held by other processes or boxes"; exit 1; }

ifneq ($(LAUNCHER),)
train: $(FOLDS) $(call CAMERA_DEPS,$(CROPS)) | $(STAMP)
	$(KS) slurm-train $(foreach m,$(MODELS),--config configs/$(m).yaml) --data "$(DATA)" \
		--folds-file $(FOLDS) --runs-dir $(RUNS) $(TASK_ARG) \
		--set $(call CAMERA_DEPS,crops_manifest=$(CROPS)) cache_dir=$(CACHE) $(TRACK_SET) $(TRAIN_ARGS) $(SLURM_ARGS)
else
train: $(foreach m,$(MODELS),$(RUNS)/$(m)/oof.csv) ## train every model of SET (or MODELS) on every fold (LAUNCHER=slurm: as Slurm jobs)
endif

sets: | $(STAMP) ## list the model sets (configs/sets): name, GPU time, models
	$(KS) model-set --list

$(META): $(firstword $(DATA_TABLES)) | $(STAMP)
	$(KS) meta --data "$(DATA)" --out $@ $(TASK_ARG)

meta: $(META) ## read every image's info bar (clock, camera, IR) and group bursts -> meta.csv

# Conser-vision's labels are their own table; another task's come through the task file.
$(RUNS)/$(ENSEMBLE)/test.csv: $(ENSEMBLE_CONFIG) $(foreach m,$(MODELS),$(RUNS)/$(m)/oof.csv) \
		$(call CAMERA_DEPS,$(META) $(DETECTIONS))
	$(KS) ensemble --config $(ENSEMBLE_CONFIG) $(foreach m,$(MODELS),$(RUNS)/$(m)) \
		$(if $(TASK_SPEC),$(TASK_ARG),--labels "$(DATA)/train_labels.csv") --out $(RUNS)/$(ENSEMBLE) --data "$(DATA)" \
		$(call CAMERA_DEPS,--meta $(META) --detections "$(DETECTIONS)")

ensemble: $(RUNS)/$(ENSEMBLE)/test.csv ## blend the models' OOF, temperature-scale -> runs/ensemble

$(SUBMISSION): $(RUNS)/$(ENSEMBLE)/test.csv
	$(KS) submit --predictions $< --format "$(DATA)/$(FORMAT_FILE)" --out $@ $(TASK_ARG)

submit: $(SUBMISSION) ## write and validate submissions/<ensemble>.csv


$(REPORT): $(RUNS)/$(ENSEMBLE)/test.csv $(call CAMERA_DEPS,$(META))
	$(KS) report $(foreach m,$(MODELS),$(RUNS)/$(m)) $(RUNS)/$(ENSEMBLE) \
		--data "$(DATA)" $(call CAMERA_DEPS,--crops $(CROPS) --meta $(META)) --out $(dir $@) $(TASK_ARG)

report: $(REPORT) ## HTML report with tables, confusion matrices, calibration, per-site errors

predict: | $(STAMP) ## a new deployment: IMAGES=folder [RUN=run or ensemble] -> predictions.csv
	@test -n "$(IMAGES)" || { echo "make predict: set IMAGES=folder of images (one sub-folder per site)"; exit 2; }
	$(KS) predict --images $(IMAGES) --run $(RUN) --out $(OUT)/predictions.csv $(TASK_ARG) \
		$(if $(filter 1,$(SITE_FROM_FOLDER)),--site-from-folder) $(QUIET)

# pytest-xdist: TEST_WORKERS processes share the tests (each test's torch on one thread, see
# tests/conftest.py); the slowest tests run first, so no long one is left for last. 1: in order.
TEST_WORKERS ?= 2
PYTEST = $(VENV)/bin/pytest -q $(if $(filter-out 1,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist worksteal)

test: $(STAMP) ## the default test suite (CPU, under 15 minutes)
	$(PYTEST)

# The documentation site (mkdocs.yml): a broken link or anchor fails the build.
SITE ?= $(OUT)/site
docs: $(STAMP) ## the documentation site, built strict -> site/index.html
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir $(abspath $(SITE))
	@echo "docs: $(SITE)/index.html"

include make/more.mk benchmarks/Makefile
