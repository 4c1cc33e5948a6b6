"""The config smoke check every family reuses: build a config's model with
the real registries, run a loss step (backward) and a predict step on a tiny
batch of the sample set, and check the outputs' shapes (self-supervised
models have no predict step: their ``mode='tensor'`` features instead)."""
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner

from mmconvarch.utils.sample_data import apply_sample_data

SMOKE_SIZE = 64  # batch 2: BN in heads (UperNet PPM) needs >1 value


def build_smoke(config_path: str, sample_root: str, img_size=SMOKE_SIZE,
                **cfg_options):
    cfg = Config.fromfile(config_path)
    apply_sample_data(cfg, root=sample_root, img_size=img_size, batch_size=2)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.default_scope)
    if cfg.get('data_preprocessor'):  # as Runner does (mmpretrain configs)
        cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.init_weights()
    return cfg, model


def run_smoke(config_path: str, sample_root: str, **cfg_options):
    cfg, model = build_smoke(config_path, sample_root, **cfg_options)
    torch.manual_seed(0)
    model.train()
    batch = next(iter(Runner.build_dataloader(cfg.train_dataloader)))
    data = model.data_preprocessor(batch, True)
    loss, log_vars = model.parse_losses(model(**data, mode='loss'))
    assert torch.isfinite(loss), log_vars
    loss.backward()
    backbone = model.backbone
    grads = [p.grad for p in backbone.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads), \
        'some backbone parameters got no gradient'
    assert any(g.abs().sum() > 0 for g in grads)

    model.eval()
    if _is_self_supervised(model):  # no predict step (mmpretrain MAE-style)
        with torch.no_grad():
            feats = model(data['inputs'], mode='tensor')
        _check_features(model.backbone, data['inputs'], feats)
        return cfg, model, log_vars, feats
    val_batch = next(iter(Runner.build_dataloader(cfg.val_dataloader)))
    with torch.no_grad():
        outputs = model.val_step(val_batch)
    assert len(outputs) == len(val_batch['data_samples'])
    check = _CHECKS[cfg.default_scope]
    for out in outputs:
        check(cfg, out)
    return cfg, model, log_vars, outputs


def _is_self_supervised(model) -> bool:
    try:
        from mmpretrain.models.selfsup import BaseSelfSupervisor
    except ImportError:
        return False
    return isinstance(model, BaseSelfSupervisor)


def _check_features(backbone, inputs, feats):
    """Feature maps of ``out_indices``: (N, C_i, H/2**(i+2), W/2**(i+2))
    for ConvNeXt-like backbones (``channels``), else batch size only."""
    assert isinstance(feats, tuple) and feats, type(feats)
    n, _, h, w = inputs.shape
    channels = getattr(backbone, 'channels', None)
    for i, feat in zip(getattr(backbone, 'out_indices', []), feats):
        assert torch.isfinite(feat).all()
        expected = (n, channels[i], h >> (i + 2), w >> (i + 2)) \
            if channels else (n, ) + tuple(feat.shape[1:])
        assert tuple(feat.shape) == expected, (feat.shape, expected)


def _check_det(cfg, out):
    h, w = out.ori_shape
    pred = out.pred_instances
    assert pred.bboxes.ndim == 2 and pred.bboxes.shape[1] == 4
    assert pred.scores.shape == pred.labels.shape == pred.bboxes.shape[:1]
    if 'masks' in pred:
        assert tuple(pred.masks.shape) == (len(pred.bboxes), h, w)


def _check_seg(cfg, out):
    h, w = out.ori_shape
    assert tuple(out.pred_sem_seg.data.shape) == (1, h, w)
    num_classes = cfg.model.decode_head.num_classes
    assert out.seg_logits.data.shape[0] == num_classes


def _check_cls(cfg, out):
    assert tuple(out.pred_score.shape) == (cfg.model.head.num_classes, )


_CHECKS = dict(mmdet=_check_det, mmseg=_check_seg, mmpretrain=_check_cls)
