# kaggle_style: `make folds train ensemble submit` on any DrivenData folder (DATA=path).
# Every target is a file, so make rebuilds only what changed. `make help` lists the targets.
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
CROPS := $(OUT)/crops/manifest.csv
META ?= $(OUT)/meta/meta.csv
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
# submitit, `tune` starts WORKERS Optuna workers as jobs (README "Slurm"); local: the same jobs as
# processes here. Empty: this box trains, as always.
LAUNCHER ?=
PARTITION ?=
GPUS_PER_JOB ?=
TIME ?=
MEM ?=
SLURM_CONFIG ?=
WORKERS ?= 2
SLURM_ARGS = --launcher $(LAUNCHER) --folder $(OUT)/slurm/%j $(if $(SLURM_CONFIG),--slurm-config \
	$(SLURM_CONFIG)) $(if $(PARTITION),--partition $(PARTITION)) $(if $(GPUS_PER_JOB),--gpus-per-job \
	$(GPUS_PER_JOB)) $(if $(TIME),--time $(TIME)) $(if $(MEM),--mem $(MEM))
PORT ?= 8080
# TRACKER=tensorboard|mlflow|wandb|none: where training logs its curves (README "Tracking").
TRACKER ?=
TRACK_SET = $(if $(TRACKER),tracker=$(TRACKER))

.PHONY: help install demo demo-data check-data folds detect crops meta train sets ensemble submit \
	validate report predict test test-slow test-all lint bench gpu-check real-check lb-check \
	recipe-check \
	real-dry-run tune tune-set tune-export faults clean clean-cache cache-bench gpu-carry \
	gpu-check-lent wheel-check dashboard

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'
	@echo "  variables: DATA=$(DATA) SET=$(SET) (sets: $(basename $(notdir $(wildcard configs/sets/*.yaml))))" \
		"MODELS='$(MODELS)' OUT=$(OUT) N_SPLITS=$(N_SPLITS)"
	@echo "  GPU boxes: make install TORCH=keep (keep the box's CUDA torch); LAUNCH='--multi_gpu" \
		"--num_processes N' (DDP) or GPUS='0 1 …' (one fold per GPU); make gpu-check"
	@echo "  benchmarks (benchmarks/, run from the checkout): bench gpu-check real-check" \
		"real-dry-run cache-bench, shared data from SHARED_DATA=$(SHARED_DATA)"

$(STAMP): pyproject.toml
	@case "$(TORCH)" in pin|keep) ;; *) echo "make install: TORCH=$(TORCH): use pin (the pinned \
		torch from local disk) or keep (this machine's own CUDA torch)"; exit 2;; esac
	test -x $(PY) || $(PYTHON) -m venv $(if $(filter keep,$(TORCH)),--system-site-packages) $(VENV)
	command -v tesseract >/dev/null || { apt-get update -qq && apt-get install -y -qq \
		--no-install-recommends tesseract-ocr; }
	$(PY) -m pip install -q --upgrade pip
	$(if $(filter keep,$(TORCH)),$(PY) -c "import torch; print('keeping torch', torch.__version__, \
		'cuda', torch.version.cuda)",$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1)
	$(PY) -m pip install -q -e '.[dev,detect,slurm]'
	$(PY) -m pip install -q --no-deps pixeltable-yolox==0.4.3
	$(PY) -m pip install -q --no-deps megadetector==10.0.28  # its validator, for the tests only
	touch $@

install: $(STAMP) ## create .venv (TORCH=pin: pinned torch from local disk; TORCH=keep: the box's own)

# Two jobs at once: the two demo models train side by side, one single-threaded process per core
# (meta reads the info bars meanwhile); each job's output is printed whole when it ends.
DEMO_JOBS ?= 2
DEMO_SPLITS ?= 3
demo: $(STAMP) ## set up and run everything on the generated demo data (CPU, a few minutes; TASK=boreal: the Kaggle-layout demo)
ifneq ($(filter-out conservision,$(TASK)),)
	$(KS) task demo $(TASK) --out $(OUT) --threads $(or $(THREADS),2)
else
	$(MAKE) -j$(DEMO_JOBS) --output-sync=target submit report DATA=data/demo OUT=$(OUT) SET=demo \
		N_SPLITS=$(DEMO_SPLITS) THREADS=$(DEMO_THREADS)
	@$(KS) summary $(RUNS)/$(ENSEMBLE) $(SUBMISSION)
	@echo "training curves: $(VENV)/bin/tensorboard --logdir $(RUNS) --host 127.0.0.1"
endif

data/demo/train_features.csv: | $(STAMP)
	$(KS) demo-data --out data/demo --seed $(SEED)

# Written by the same command: under `make -j` the labels wait for it instead of failing below.
data/demo/train_labels.csv: data/demo/train_features.csv ;

# Any other DATA folder is the user's: say what is missing rather than "no rule to make target".
%/train_features.csv %/train_labels.csv:
	@echo "make: $@ not found: DATA='$(DATA)' must be a DrivenData folder (README: Getting the" \
		"data; \`kaggle-style check-data '$(DATA)'\` says what is missing)"; exit 2

demo-data: data/demo/train_features.csv ## generate the embedded demo dataset in data/demo

$(FOLDS): $(DATA_DEP)/train_features.csv $(DATA_DEP)/train_labels.csv | $(STAMP)
	$(KS) folds --data "$(DATA)" --out $@ --n-splits $(N_SPLITS) --seed 42

folds: $(FOLDS) ## site-grouped, class-stratified folds -> folds/folds.csv

ifeq ($(DETECTIONS),data/demo/detections.json)
# The generator writes the demo's detections: under `make -j` they wait for it, no detector runs.
$(DETECTIONS): data/demo/train_features.csv ;
else
$(DETECTIONS): | $(DATA_DEP)/train_features.csv $(STAMP)
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
$(RUNS)/%/oof.csv: configs/%.yaml $(FOLDS) $(CROPS) $$(call PSEUDO_SOURCES,$$*) | $(STAMP)
	$(if $(GPUS),for g in $(GPUS); do CUDA_VISIBLE_DEVICES=$$g ,)$(TRAIN_CMD) --config $< \
		--name $* --data "$(DATA)" --folds-file $(FOLDS) --runs-dir $(RUNS) \
		--set crops_manifest=$(CROPS) cache_dir=$(CACHE) $(TRACK_SET) $(TRAIN_ARGS) $(QUIET)$(if $(GPUS), & \
		done; wait)
	@test -f $@ || { echo "$@ not written: folds still held by other processes or boxes"; exit 1; }

ifneq ($(LAUNCHER),)
train: $(FOLDS) $(CROPS) | $(STAMP)
	$(KS) slurm-train $(foreach m,$(MODELS),--config configs/$(m).yaml) --data "$(DATA)" \
		--folds-file $(FOLDS) --runs-dir $(RUNS) --set crops_manifest=$(CROPS) cache_dir=$(CACHE) \
		$(TRACK_SET) $(SLURM_ARGS)
else
train: $(foreach m,$(MODELS),$(RUNS)/$(m)/oof.csv) ## train every model of SET (or MODELS) on every fold (LAUNCHER=slurm: as Slurm jobs)
endif

sets: | $(STAMP) ## list the model sets (configs/sets): name, GPU time, models
	$(KS) model-set --list

$(META): $(DATA_DEP)/train_features.csv | $(STAMP)
	$(KS) meta --data "$(DATA)" --out $@

meta: $(META) ## read every image's info bar (clock, camera, IR) and group bursts -> meta.csv

$(RUNS)/$(ENSEMBLE)/test.csv: $(ENSEMBLE_CONFIG) $(foreach m,$(MODELS),$(RUNS)/$(m)/oof.csv) $(META) \
		$(DETECTIONS)
	$(KS) ensemble --config $(ENSEMBLE_CONFIG) $(foreach m,$(MODELS),$(RUNS)/$(m)) \
		--labels "$(DATA)/train_labels.csv" --out $(RUNS)/$(ENSEMBLE) --data "$(DATA)" --meta $(META) \
		--detections "$(DETECTIONS)"

ensemble: $(RUNS)/$(ENSEMBLE)/test.csv ## blend the models' OOF, temperature-scale -> runs/ensemble

$(SUBMISSION): $(RUNS)/$(ENSEMBLE)/test.csv
	$(KS) submit --predictions $< --format "$(DATA)/submission_format.csv" --out $@

submit: $(SUBMISSION) ## write and validate submissions/<ensemble>.csv

validate: $(SUBMISSION) ## check the submission file against the format
	$(KS) validate $< --format "$(DATA)/submission_format.csv"

$(REPORT): $(RUNS)/$(ENSEMBLE)/test.csv $(META)
	$(KS) report $(foreach m,$(MODELS),$(RUNS)/$(m)) $(RUNS)/$(ENSEMBLE) \
		--data "$(DATA)" --crops $(CROPS) --meta $(META) --out $(dir $@)

report: $(REPORT) ## HTML report with tables, confusion matrices, calibration, per-site errors

predict: | $(STAMP) ## a new deployment: IMAGES=folder [RUN=run or ensemble] -> predictions.csv
	@test -n "$(IMAGES)" || { echo "make predict: set IMAGES=folder of images (one sub-folder per site)"; exit 2; }
	$(KS) predict --images $(IMAGES) --run $(RUN) --out $(OUT)/predictions.csv \
		$(if $(filter 1,$(SITE_FROM_FOLDER)),--site-from-folder) $(QUIET)

ifneq ($(LAUNCHER),)
tune: $(FOLDS) $(CROPS) | $(STAMP)
	$(KS) slurm-tune --config $(CONFIG) --study $(STUDY) --storage $(STORAGE) --n-trials $(TRIALS) \
		--workers $(WORKERS) --set "data=$(DATA)" folds_file=$(FOLDS) crops_manifest=$(CROPS) \
		cache_dir=$(CACHE) runs_dir=$(OUT)/studies/runs "folds=$(TUNE_FOLDS)" $(TRACK_SET) $(SLURM_ARGS)
else
tune: $(FOLDS) $(CROPS) | $(STAMP) ## Optuna study over CONFIG's search space (STUDY, STORAGE, TRIALS, GPUS)
	$(if $(GPUS),for g in $(GPUS); do CUDA_VISIBLE_DEVICES=$$g ,)$(TUNE_CMD) --config $(CONFIG) \
		--study $(STUDY) --storage $(STORAGE) --n-trials $(TRIALS) --quiet \
		--set "data=$(DATA)" folds_file=$(FOLDS) crops_manifest=$(CROPS) cache_dir=$(CACHE) \
		runs_dir=$(OUT)/studies/runs "folds=$(TUNE_FOLDS)" $(TRACK_SET)$(if $(GPUS), & done; wait)
endif

dashboard: | $(STAMP) ## optuna-dashboard for STORAGE (a study's URL) on 127.0.0.1:PORT
	$(KS) dashboard --storage $(STORAGE) --port $(PORT)

tune-set: | $(STAMP) ## one study per model of SET, in turn (TRIALS each, same STORAGE)
	$(foreach m,$(MODELS),$(MAKE) tune CONFIG=configs/$(m).yaml STUDY=$(m) && ) true

tune-export: | $(STAMP) ## write the study's best trial as configs/<study>.best.yaml
	$(KS) tune-export --study $(STUDY) --storage $(STORAGE) --out configs/$(STUDY).best.yaml

# pytest-xdist: TEST_WORKERS processes share the tests (each test's torch on one thread, see
# tests/conftest.py); the slowest tests run first, so no long one is left for last. 1: in order.
TEST_WORKERS ?= 2
PYTEST = $(VENV)/bin/pytest -q $(if $(filter-out 1,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist worksteal)

test: $(STAMP) ## the default test suite (CPU, under 15 minutes)
	$(PYTEST)

test-slow: $(STAMP) ## slow tests only (fault injection, every config, real-data training)
	$(PYTEST) -m slow

test-all: $(STAMP) ## every test
	$(PYTEST) -m ''

lint: $(STAMP) ## ruff
	$(VENV)/bin/ruff check kaggle_style tests benchmarks

# The benchmarks (benchmarks/, beside the package and never installed with it) run from the
# checkout: `python -m benchmarks.NAME --help` for each one's options.
BENCH := $(PY) -m benchmarks

bench: $(STAMP) ## throughput benchmark: model-only bound vs end-to-end (prints JSON)
	$(BENCH).bench --json

real-check: $(STAMP) ## pretrained vs random vs prior on the real camtrapR thumbnails
	$(BENCH).real_check --shared $(SHARED_DATA)

lb-check: $(CROPS) | $(STAMP) ## play the leaderboard locally: hold out whole sites as a pseudo-test set
	$(KS) lb-check --data "$(DATA)" --work $(OUT)/lb_check --set crops_manifest=$(CROPS) cache_dir=$(CACHE)

# LEVERS_ARGS='--models demo-crop --pseudo-from demo-crop --min-prob 0.6' (python -m benchmarks.levers -h)
.PHONY: levers
levers: $(FOLDS) $(CROPS) $(META) | $(STAMP) ## demo: nested OOF and hidden-test log loss before/after each lever (runs/levers.json)
	$(PY) -m benchmarks.levers --data "$(DATA)" --folds $(FOLDS) --crops $(CROPS) --meta "$(META)" \
		--runs $(RUNS) --cache $(CACHE) --out $(RUNS)/levers.json $(LEVERS_ARGS)

faults: $(STAMP) ## kill a demo training run at random points; the submission must not change
	$(VENV)/bin/pytest -q -m slow tests/test_faults.py

check-data: | $(STAMP) ## check a DrivenData folder: tables, ids, sites, image files (CSV_ONLY=1: tables only)
	$(KS) check-data "$(DATA)" $(if $(filter 1,$(CSV_ONLY)),--csv-only)

gpu-check: | $(STAMP) ## on a GPU box: bench + the real-size pipeline, one JSON line (SMALL=1: CPU-sized)
	$(BENCH).gpu_check --weights $(DETECTOR_WEIGHTS) $(if $(filter 1,$(SMALL)),--small)

# A lent GPU machine (README "The GPU check on a lent machine"): no network, its own torch 2.11
# and Python 3.12, no albumentations or YOLOX. `gpu-carry` (here) fetches their wheels and the
# detector weights into ignored folders; `gpu-check-lent PART=bench|pipeline` runs there.
# Each PART is one benchmark command (LENT_PART_<name>); another part is one more such line.
LENT_WHEELS := albumentations==2.0.8 albucore==0.0.24 pydantic==2.14.4 pydantic-core==2.50.5 \
	annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0 \
	stringzilla==5.3.2 simsimd==6.5.16 pixeltable-yolox==0.4.3 loguru==0.7.3 pycocotools==2.0.11
LENT_PLATFORMS := $(foreach n,manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1,--platform $(n)_x86_64)

gpu-carry: ## here: wheels (.whl) and detector weights (.gpu_carry) for a lent GPU machine
	mkdir -p .whl .gpu_carry
	$(PYTHON) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
		--implementation cp $(LENT_PLATFORMS) -d .whl $(LENT_WHEELS)
	cp $(DETECTOR_WEIGHTS) .gpu_carry/
	@echo "carry: [\".whl\", \".gpu_carry\"]; command: make gpu-check-lent PART=bench"

LENT_WORK := /tmp/gpu_check
LENT_PART_bench = benchmarks.gpu_check --only bench --work-dir $(LENT_WORK)
LENT_PART_pipeline = benchmarks.gpu_check --only pipeline --work-dir $(LENT_WORK) \
	--weights .gpu_carry/$(notdir $(DETECTOR_WEIGHTS))
LENT_PART_recipes = benchmarks.recipe_gpu --out $${OUT:-/tmp} --seconds 12

gpu-check-lent: ## on a lent GPU machine (carry .whl .gpu_carry): PART=bench|pipeline|recipes, JSON to $$OUT
	@test -n "$(LENT_PART_$(PART))" || { echo "make gpu-check-lent: PART=$(PART): use one of" \
		"$(patsubst LENT_PART_%,%,$(filter LENT_PART_%,$(.VARIABLES)))"; exit 2; }
	python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
		--target /tmp/site .whl/*.whl
	PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1 timeout 560 python3 -m $(LENT_PART_$(PART)) \
		> $${OUT:-/tmp}/gpu_check_$(PART).log 2>&1; status=$$?; \
		cp $(LENT_WORK)/*.json $(LENT_WORK)/*.log $${OUT:-/tmp}/ 2>/dev/null; \
		tail -60 $${OUT:-/tmp}/gpu_check_$(PART).log; exit $$status

real-dry-run: | $(STAMP) ## the real Conser-vision CSVs, a 64x48 JPEG per id, every stage on CPU (GROWTH=1: 1/8 first)
	$(BENCH).real_dry_run --work-dir $(OUT)/real_dry_run --source $(SHARED_DATA)/conservision \
		--threads $(or $(THREADS),1) $(if $(filter 1,$(GROWTH)),--growth-from 0.125)

recipe-check: | $(STAMP) ## every recipe of every set at its real size: one CPU step, one JSON line each
	OMP_NUM_THREADS=$(or $(THREADS),2) $(PY) -m benchmarks.recipe_check --threads $(or $(THREADS),2)

clean-cache: | $(STAMP) ## list caches no config in configs/ uses (YES=1 deletes them)
	$(KS) clean-cache --configs configs --data "$(DATA)" --crops-manifest $(CROPS) \
		--cache-dir $(CACHE) $(if $(filter 1,$(YES)),--yes)

cache-bench: | $(STAMP) ## cache forms: bytes/image and images/s per worker, sizing table
	$(BENCH).cache_bench --shared $(SHARED_DATA)

wheel-check: | $(STAMP) ## build the wheel, install it alone in a fresh venv, run its commands
	$(PY) -m benchmarks.wheel_check

clean: ## remove generated data and outputs (keeps .venv)
	rm -rf data/demo $(OUT)/folds/*.csv $(OUT)/folds/*.yaml $(OUT)/crops $(RUNS) $(CACHE) \
		$(OUT)/submissions/*.csv $(OUT)/reports $(OUT)/studies $(OUT)/predictions.csv \
		$(OUT)/.predictions_work $(OUT)/meta $(OUT)/detections $(OUT)/real_dry_run $(OUT)/gpu_check $(OUT)/slurm
