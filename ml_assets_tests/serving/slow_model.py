"""A deliberately slow classifier: correct predictions, ~100 ms of CPU per call (any number of rows)."""

import time

from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression


def burn(seconds: float) -> None:
    """Spend `seconds` of this thread's CPU time (not wall clock: slow on any machine, busy or idle)."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


class SlowClassifier(ClassifierMixin, BaseEstimator):
    def __init__(self, seconds: float = 0.1):
        self.seconds = seconds

    def fit(self, x, y):
        self.model_ = LogisticRegression(max_iter=500).fit(x, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, x):
        burn(self.seconds)
        return self.model_.predict_proba(x)

    def predict(self, x):
        return self.classes_[self.predict_proba(x).argmax(axis=1)]
