"""Predictions in the files ecologists open: Camtrap DP packages, MegaDetector batch-output
files with classifications, and record tables of independent events per site.

Every writer takes one `Classified` (the images, their times, sequences, boxes and calibrated
class probabilities) and the user's thresholds; none decides a threshold of its own.
"""
