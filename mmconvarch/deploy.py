"""One deploy protocol: any module with ``switch_to_deploy()`` is converted
(re-parameterised) in place by :func:`switch_to_deploy`; on top of it,
:func:`latency_model` replays a whole (deploy) model as one CUDA graph for
small-batch latency."""
import inspect
import warnings
from typing import Any, Callable, List

import torch
import torch.nn as nn


def switch_to_deploy(model: nn.Module, force: bool = False) -> List[str]:
    """Call ``switch_to_deploy()`` on the outermost modules that have it.

    Args:
        model: The model (or backbone) to convert in place.
        force: Passed to implementations that refuse to fuse when fusion
            would change outputs (e.g. VanillaNet before its activation
            annealing finished).

    Returns:
        The names of the converted modules (``''`` is ``model`` itself).
    """
    converted = []

    def visit(name: str, module: nn.Module) -> None:
        fn = getattr(module, 'switch_to_deploy', None)
        if callable(fn):
            if 'force' in inspect.signature(fn).parameters:
                fn(force=force)
            else:
                fn()
            converted.append(name)
            return
        for child_name, child in module.named_children():
            visit(f'{name}.{child_name}' if name else child_name, child)

    visit('', model)
    if not converted:
        raise ValueError(f'{type(model).__name__} has no module with '
                         'switch_to_deploy(); nothing to convert.')
    return converted


def _map_tensors(fn: Callable[[torch.Tensor], Any], value: Any) -> Any:
    """Apply ``fn`` to every tensor in a tensor / tuple / list / dict output."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_map_tensors(fn, v) for v in value)
    if isinstance(value, dict):
        return {k: _map_tensors(fn, v) for k, v in value.items()}
    return value


class LatencyModel:
    """A model bound to one input shape, dtype and device, for repeated
    small-batch inference (what :func:`latency_model` returns).

    Calling it with a tensor of the bound shape/dtype/device returns what
    ``model(x)`` returns. On CUDA the whole forward was captured once as a
    CUDA graph: a call copies ``x`` into the graph's static input and replays
    every kernel with one launch, so the per-kernel launch cost of a
    launch-bound batch-1 forward disappears. Elsewhere it runs the eager
    model. Any other input shape, dtype or device is refused with a
    ValueError (a graph replays fixed shapes): bind a new one for it.

    Attributes:
        graphed (bool): Whether calls replay a CUDA graph.
        shape, dtype, device: The input this model is bound to.
    """

    def __init__(self, model: nn.Module, example: torch.Tensor, warmup: int,
                 clone_output: bool) -> None:
        self.model = model
        self.shape, self.dtype, self.device = example.shape, example.dtype, example.device
        self.clone_output = clone_output
        self.graphed = example.is_cuda
        if not self.graphed:
            return
        self._input = example.detach().clone()
        stream = torch.cuda.Stream(example.device)
        stream.wait_stream(torch.cuda.current_stream(example.device))
        # warm-up off the default stream (cuDNN/cuBLAS pick algorithms and
        # allocate workspaces outside the capture), then capture
        with torch.cuda.stream(stream), torch.no_grad():
            for _ in range(warmup):
                model(self._input)
        torch.cuda.current_stream(example.device).wait_stream(stream)
        self._graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(self._graph):
            self._output = model(self._input)

    def check(self, x: torch.Tensor) -> None:
        """Raise a ValueError unless ``x`` matches the bound input."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f'LatencyModel takes one tensor, got {type(x).__name__}.')
        if (x.shape, x.dtype, x.device) != (self.shape, self.dtype, self.device):
            raise ValueError(
                f'This latency model is bound to inputs of shape {tuple(self.shape)}, '
                f'{self.dtype}, on {self.device}; got {tuple(x.shape)}, {x.dtype}, on '
                f'{x.device}. Bind another with mmconvarch.deploy.latency_model(model, '
                'example) for that input, or call the eager model.')

    def __call__(self, x: torch.Tensor) -> Any:
        self.check(x)
        if not self.graphed:
            with torch.no_grad():
                return self.model(x)
        self._input.copy_(x)
        self._graph.replay()
        return _map_tensors(torch.clone, self._output) if self.clone_output else self._output

    def __repr__(self) -> str:
        how = 'CUDA graph' if self.graphed else 'eager'
        return (f'LatencyModel({type(self.model).__name__}, {how}, input '
                f'{tuple(self.shape)} {self.dtype} on {self.device})')


def latency_model(model: nn.Module, example: torch.Tensor, warmup: int = 3,
                  clone_output: bool = True) -> LatencyModel:
    """Bind ``model`` to the shape of ``example`` for low-latency inference.

    On a CUDA input the whole forward is captured as one CUDA graph and
    replayed on every call (outputs equal the eager model's: the same kernels
    run on the same data). On any other device it falls back to the eager
    model, with one warning that says so. Use it on a model in eval mode,
    typically after :func:`switch_to_deploy` (e.g. VanillaNet at batch 1,
    whose eager forward on a GPU is bound by kernel launches).

    Args:
        model: The model to run; must be in eval mode (a captured graph
            would replay batch-norm statistic updates and dropout masks).
        example: An input of the shape, dtype and device every later call
            will use; its values are only used for the warm-up.
        warmup: Eager forwards before the capture (CUDA only). Defaults to 3.
        clone_output: Return a copy of the graph's static output on every
            call (True, the default); False returns the static output itself,
            which the next call overwrites (saves one small copy per call).

    Returns:
        A :class:`LatencyModel`; calling it with another shape, dtype or
        device raises a ValueError.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f'latency_model takes an nn.Module, got {type(model).__name__}.')
    if not isinstance(example, torch.Tensor):
        raise TypeError('latency_model needs an example input tensor, got '
                        f'{type(example).__name__}.')
    if model.training:
        raise ValueError(
            f'latency_model needs {type(model).__name__} in eval mode (call model.eval()): '
            'a captured training forward would replay batch-norm updates and dropout.')
    if not isinstance(warmup, int) or warmup < 1:
        raise ValueError(f'latency_model warmup must be an int >= 1, got {warmup!r}.')
    if not example.is_cuda:
        warnings.warn(
            f'latency_model: CUDA graphs need a CUDA input, the example is on '
            f'{example.device}; calls run the eager model.', stacklevel=2)
    return LatencyModel(model, example, warmup, clone_output)
