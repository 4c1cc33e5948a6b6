"""mmpretrain's ImageClassifier that loads official checkpoints whole."""
from mmpretrain.models.classifiers import ImageClassifier

from mmconvarch.checkpoint.pretrained import load_official_checkpoints
from mmconvarch.registry import MODELS

__all__ = ['OfficialCheckpointClassifier']


@MODELS.register_module()
class OfficialCheckpointClassifier(ImageClassifier):
    """mmpretrain's ``ImageClassifier`` that also loads an official
    checkpoint of its backbone's family as a whole.

    The classification configs of mmconvarch use it, so
    ``mmpretrain.get_model(name, pretrained=True)`` (the metafile's official
    file), ``load_from`` and ``tools/test.py CONFIG official.pth`` convert the
    official keys (backbone and head) on load; a checkpoint in our layout
    loads unchanged, and an official checkpoint of another family raises one
    ValueError naming both (see
    :func:`mmconvarch.checkpoint.load_official_checkpoints`, which does it:
    one load-state-dict pre-hook on this model). Arguments are
    ``ImageClassifier``'s.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        load_official_checkpoints(self)
