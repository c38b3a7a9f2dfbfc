# The user's other targets: tuning, checks, housekeeping. Included by the Makefile (run them
# from the checkout's root: `make tune`); its variables are set there.

.PHONY: demo-data validate tune dashboard tune-set tune-export check-data lb-check \
	clean-cache clean

demo-data: data/demo/train_features.csv ## generate the embedded demo dataset in data/demo

validate: $(SUBMISSION) ## check the submission file against the format
	$(KS) validate $< --format "$(DATA)/$(FORMAT_FILE)" $(TASK_ARG)

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

check-data: | $(STAMP) ## check a competition folder: tables, ids, groups, image files (CSV_ONLY=1: tables only)
	$(KS) check-data "$(DATA)" $(if $(filter 1,$(CSV_ONLY)),--csv-only) $(TASK_ARG)

lb-check: $(call CAMERA_DEPS,$(CROPS)) | $(STAMP) ## play the leaderboard locally: hold out whole sites as a pseudo-test set
	$(KS) lb-check --data "$(DATA)" --work $(OUT)/lb_check $(TASK_ARG) --set $(call CAMERA_DEPS,crops_manifest=$(CROPS)) cache_dir=$(CACHE)

clean-cache: | $(STAMP) ## list caches no config in configs/ uses (YES=1 deletes them)
	$(KS) clean-cache --configs configs --data "$(DATA)" --crops-manifest $(CROPS) \
		--cache-dir $(CACHE) $(if $(filter 1,$(YES)),--yes)

clean: ## remove generated data and outputs (keeps .venv)
	rm -rf data/demo $(OUT)/folds/*.csv $(OUT)/folds/*.yaml $(OUT)/crops $(RUNS) $(CACHE) \
		$(OUT)/submissions/*.csv $(OUT)/reports $(OUT)/studies $(OUT)/predictions.csv \
		$(OUT)/.predictions_work $(OUT)/meta $(OUT)/detections $(OUT)/real_dry_run $(OUT)/gpu_check $(OUT)/slurm $(SITE)
