"""The HTML report (`kaggle-style report`) and the demo's closing summary (`kaggle-style summary`).

runs (reading run folders, the number format), plots (figures), sections (tables of runs,
ensemble steps and sites), activity (activity by hour, sequences, independent events per site,
the time step's effect), gallery (confidently wrong images), page (the page), summary (the
demo's closing lines).
"""
