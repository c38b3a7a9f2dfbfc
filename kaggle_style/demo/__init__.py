"""The demo-data generator: a synthetic Conser-vision folder that poses the real problem.

scenes (sites and their backgrounds), animals (drawn silhouettes), frames (one frame: scene,
animal, light, info bar), infobar (the camera's text layouts), visits (bursts and activity
hours), plan (class totals and sites), detections (a simulated detector), generator (the folder).
"""
