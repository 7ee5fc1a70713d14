"""The training report: one self-contained HTML page of a training run, for people to read.

``fraudops train --report report.html`` writes it. The pipeline fills a
``TrainingReportData`` with what it already measured (per-fold metrics, each fold's test
scores, the candidates compared, calibration, thresholds, feature importance) and
``render_training_report`` draws it: figures inline as SVG, no network, same bytes for the
same data. Importing this package loads neither matplotlib nor the template.
"""

from fraudops.learn.report_html._data import (
    Calibration,
    CostCurvePoint,
    FoldScores,
    HandbookRow,
    MemberScore,
    Thresholds,
    TrainingReportData,
    scenario_names,
)
from fraudops.learn.report_html._recall import ScenarioRecall, per_scenario_recall
from fraudops.learn.report_html._render import render_training_report

__all__ = [
    "Calibration",
    "CostCurvePoint",
    "FoldScores",
    "HandbookRow",
    "MemberScore",
    "ScenarioRecall",
    "Thresholds",
    "TrainingReportData",
    "per_scenario_recall",
    "render_training_report",
    "scenario_names",
]
