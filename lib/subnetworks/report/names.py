"""How the report names what it sets the IMP masks against: the study's controls (by the name their mask files and
metrics carry) and the closed-form nulls of the two random controls. The one place these labels are written: the
report reads artefacts only, so it does not import the study's control classes."""

from __future__ import annotations

PRETRAINED = "pretrained"  # magnitude pruning of θ0 alone: the same mask in every language
CONTROL_LABELS = {  # control name -> how tables, figures and sentences name it
    PRETRAINED: "pre-trained magnitude (P)",
    "random": "layer-wise random",
    "global_random": "global random",
}
SHORT_LABELS = {PRETRAINED: "P", "random": "layer-wise random", "global_random": "global random"}
# null -> the random control whose masks it is the expectation of (measured overlap should match it)
NULLS = {"layerwise": "random", "global": "global_random"}
NULL_OF = {control: null for null, control in NULLS.items()}
NULL_LABELS = {"layerwise": "layer-wise null", "global": "global null"}
OVERLAP_MEASURES = {  # overlap measure of two masks -> its name in sentences and figures
    "jaccard": "Jaccard of the kept weights",
    "agreement": "agreement (weights both keep or both prune)",
}
NULL_TOLERANCE = 0.005  # measured overlap of a random control within this of its null: the null describes it


def control_label(name: str, short: bool = False) -> str:
    """A control's label; a control the report does not know is named by its name."""
    return (SHORT_LABELS if short else CONTROL_LABELS).get(name, name)
