"""Official RevCol checkpoint -> mmconvarch keys.

    python tools/model_converters/revcol_to_mmconvarch.py SRC DST [--ema]

Same as ``tools/model_converters/convert.py revcol SRC DST``: handles the
``inter_supv`` pre-training and fine-tuned layouts (``model`` or
``state_dict_ema``), refuses other families with their missing/unexpected keys.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from convert import main  # noqa: E402

if __name__ == '__main__':
    main(['revcol', *sys.argv[1:]])
