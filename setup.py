from setuptools import find_packages, setup


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
)
