# kaggle_style: `make folds train ensemble submit` on any DrivenData folder (DATA=path).
# Every target is a file, so make rebuilds only what changed. `make help` lists the targets.

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
DETECTIONS ?= $(DATA)/detections.json
DETECTOR ?= megadetector-lite
DETECTOR_WEIGHTS ?= ../shared/data/models/megadetector_lite/yolox_tiny_640_20220528.pth
CROPS := $(OUT)/crops/manifest.csv
RUNS := $(OUT)/runs
CACHE := $(OUT)/cache
MODELS ?= demo-crop demo-full
ENSEMBLE_CONFIG ?= configs/ensemble-demo.yaml
ENSEMBLE ?= ensemble
SUBMISSION := $(OUT)/submissions/$(ENSEMBLE).csv
REPORT := $(OUT)/reports/$(ENSEMBLE)/index.html
QUIET ?= --quiet
TRAIN_ARGS ?=
CONFIG ?= configs/demo-crop.yaml
STUDY ?= demo
STORAGE ?= sqlite:///$(OUT)/studies/$(STUDY).db
TRIALS ?= 8
IMAGES ?=
RUN ?= $(RUNS)/$(ENSEMBLE)
SITE_FROM_FOLDER ?= 1

.PHONY: help install demo demo-data folds detect crops train ensemble submit validate report \
	predict test test-slow test-all lint bench real-check lb-check tune tune-export faults clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'
	@echo "  variables: DATA=$(DATA) MODELS='$(MODELS)' OUT=$(OUT) N_SPLITS=$(N_SPLITS)"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev,detect]'
	$(PY) -m pip install -q --no-deps pixeltable-yolox==0.4.3
	touch $@

install: $(STAMP) ## create .venv: pinned torch from local disk, the package (editable), dev tools

demo: $(STAMP) ## set up and run everything on the generated demo data (CPU, a few minutes)
	$(MAKE) submit report DATA=data/demo OUT=$(OUT) MODELS='$(MODELS)'
	@$(PY) -m kaggle_style.summary $(RUNS)/$(ENSEMBLE) $(SUBMISSION)

data/demo/train_features.csv: | $(STAMP)
	$(KS) demo-data --out data/demo --seed $(SEED)

demo-data: data/demo/train_features.csv ## generate the embedded demo dataset in data/demo

$(FOLDS): $(DATA)/train_features.csv $(DATA)/train_labels.csv | $(STAMP)
	$(KS) folds --data $(DATA) --out $@ --n-splits $(N_SPLITS) --seed 42

folds: $(FOLDS) ## site-grouped, class-stratified folds -> folds/folds.csv

$(DETECTIONS): | $(DATA)/train_features.csv $(STAMP)
	$(KS) detect --data $(DATA) --detector $(DETECTOR) --weights $(DETECTOR_WEIGHTS) --out $@

detect: $(DETECTIONS) ## run the detector once (the demo data ships simulated detections)

$(CROPS): $(DETECTIONS) | $(STAMP)
	$(KS) crop --detections $< --data $(DATA) --out $(OUT)/crops --thresholds 0.05 0.1 0.2 0.35 0.5 --pad 0.1

crops: $(CROPS) ## crops at several thresholds + crops/manifest.csv

$(RUNS)/%/oof.csv: configs/%.yaml $(FOLDS) $(CROPS) | $(STAMP)
	$(KS) train --config $< --name $* --data $(DATA) --folds-file $(FOLDS) --runs-dir $(RUNS) \
		--set crops_manifest=$(CROPS) cache_dir=$(CACHE) $(TRAIN_ARGS) $(QUIET)

train: $(foreach m,$(MODELS),$(RUNS)/$(m)/oof.csv) ## train every model in MODELS on every fold

$(RUNS)/$(ENSEMBLE)/test.csv: $(ENSEMBLE_CONFIG) $(foreach m,$(MODELS),$(RUNS)/$(m)/oof.csv)
	$(KS) ensemble --config $(ENSEMBLE_CONFIG) $(foreach m,$(MODELS),$(RUNS)/$(m)) \
		--labels $(DATA)/train_labels.csv --out $(RUNS)/$(ENSEMBLE) --data $(DATA)

ensemble: $(RUNS)/$(ENSEMBLE)/test.csv ## blend the models' OOF, temperature-scale -> runs/ensemble

$(SUBMISSION): $(RUNS)/$(ENSEMBLE)/test.csv
	$(KS) submit --predictions $< --format $(DATA)/submission_format.csv --out $@

submit: $(SUBMISSION) ## write and validate submissions/<ensemble>.csv

validate: $(SUBMISSION) ## check the submission file against the format
	$(KS) validate $< --format $(DATA)/submission_format.csv

$(REPORT): $(RUNS)/$(ENSEMBLE)/test.csv
	$(KS) report $(foreach m,$(MODELS),$(RUNS)/$(m)) $(RUNS)/$(ENSEMBLE) \
		--data $(DATA) --crops $(CROPS) --out $(dir $@)

report: $(REPORT) ## HTML report with tables, confusion matrices, calibration, per-site errors

predict: | $(STAMP) ## a new deployment: IMAGES=folder [RUN=run or ensemble] -> predictions.csv
	@test -n "$(IMAGES)" || { echo "make predict: set IMAGES=folder of images (one sub-folder per site)"; exit 2; }
	$(KS) predict --images $(IMAGES) --run $(RUN) --out $(OUT)/predictions.csv \
		$(if $(filter 1,$(SITE_FROM_FOLDER)),--site-from-folder) $(QUIET)

tune: $(FOLDS) $(CROPS) | $(STAMP) ## Optuna study over CONFIG's search space (STORAGE, TRIALS)
	$(KS) tune --config $(CONFIG) --study $(STUDY) --storage $(STORAGE) --n-trials $(TRIALS) \
		--set data=$(DATA) folds_file=$(FOLDS) crops_manifest=$(CROPS) cache_dir=$(CACHE) \
		runs_dir=$(OUT)/studies/runs progress=false "folds=[0]"

tune-export: | $(STAMP) ## write the study's best trial as configs/<study>.best.yaml
	$(KS) tune-export --study $(STUDY) --storage $(STORAGE) --out configs/$(STUDY).best.yaml

test: $(STAMP) ## the default test suite (CPU, under 15 minutes)
	$(VENV)/bin/pytest -q

test-slow: $(STAMP) ## slow tests only (fault injection, every config, real-data training)
	$(VENV)/bin/pytest -q -m slow

test-all: $(STAMP) ## every test
	$(VENV)/bin/pytest -q -m ''

lint: $(STAMP) ## ruff
	$(VENV)/bin/ruff check kaggle_style tests

bench: $(STAMP) ## throughput benchmark: model-only bound vs end-to-end (prints JSON)
	$(KS) bench --json

real-check: $(STAMP) ## pretrained vs random vs prior on the real camtrapR thumbnails
	$(PY) -m kaggle_style.real_check

lb-check: $(CROPS) | $(STAMP) ## play the leaderboard locally: hold out whole sites as a pseudo-test set
	$(PY) -m kaggle_style.lb_check --data $(DATA) --work $(OUT)/lb_check --set crops_manifest=$(CROPS) cache_dir=$(CACHE)

faults: $(STAMP) ## kill a demo training run at random points; the submission must not change
	$(VENV)/bin/pytest -q -m slow tests/test_faults.py

clean: ## remove generated data and outputs (keeps .venv)
	rm -rf data/demo $(OUT)/folds/*.csv $(OUT)/folds/*.yaml $(OUT)/crops $(RUNS) $(CACHE) \
		$(OUT)/submissions/*.csv $(OUT)/reports $(OUT)/studies $(OUT)/predictions.csv \
		$(OUT)/.predictions_work
