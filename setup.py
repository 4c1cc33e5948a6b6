import os.path as osp
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = osp.dirname(osp.abspath(__file__))
# What OpenMMLab packages ship under <package>/.mim: mim (search/train/test) and
# mmconvarch.model_zoo find the configs, tools and model index there once installed.
MIM_FILES = ('configs', 'tools', 'model-index.yml')


class BuildPyWithMim(build_py):
    """build_py that also copies MIM_FILES into mmconvarch/.mim of the build (so into
    wheels and non-editable installs). Editable installs run from the checkout, whose
    root already has them."""

    def run(self) -> None:
        super().run()
        if getattr(self, 'editable_mode', False):
            return
        mim = osp.join(self.build_lib, 'mmconvarch', '.mim')
        for name in MIM_FILES:
            src, dst = osp.join(HERE, name), osp.join(mim, name)
            if osp.isdir(dst):
                shutil.rmtree(dst)
            if osp.isdir(src):
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns(
                    '__pycache__', '*.pyc'))
            elif osp.isfile(src):
                self.mkpath(mim)
                shutil.copyfile(src, dst)


def read_requirements(path: str) -> list:
    with open(path) as f:
        return [ln.split('#')[0].strip() for ln in f if ln.split('#')[0].strip()]


# Compatible ranges, never pins, so installing the plugin does not rearrange a user's OpenMMLab
# environment. mmcv (>=2.0,<2.2, with ops for detection/segmentation) is not listed, as in mmdet:
# it must be built against the user's torch, which pip cannot know; tools/setup_env.sh builds it.
extras = dict(
    det=read_requirements('requirements/det.txt'),
    seg=read_requirements('requirements/seg.txt'),
    cls=read_requirements('requirements/cls.txt'),
    tests=read_requirements('requirements/tests.txt'),
)
extras['all'] = extras['det'] + extras['seg'] + extras['cls']

setup(
    name='mmconvarch',
    version='0.1.0',
    description='RevCol, ConvNeXt V2, SLaK and VanillaNet for mmpretrain, mmdet and mmsegmentation',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    python_requires='>=3.9',
    install_requires=read_requirements('requirements/runtime.txt'),
    extras_require=extras,
    license='Apache-2.0',
    cmdclass=dict(build_py=BuildPyWithMim),
)
