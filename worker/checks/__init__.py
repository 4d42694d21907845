"""Automatic checks of stored images (issue 16): size and aspect ratio as requested, not blank,
and no near-duplicates within a batch. They run outside the worker's calls (worker/checks/runner)
and mark an item's ``qa`` state; they never change its image or its status."""
