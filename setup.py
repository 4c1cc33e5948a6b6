from setuptools import find_packages, setup


def read_requirements(path: str) -> list:
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.startswith('#')]


setup(
    name='mmconvarch',
    version='0.1.0',
    description='RevCol, ConvNeXt V2, SLaK and VanillaNet for mmpretrain, mmdet and mmsegmentation',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    python_requires='>=3.9',
    install_requires=read_requirements('requirements/runtime.txt'),
    extras_require=dict(tests=read_requirements('requirements/tests.txt')),
    license='Apache-2.0',
)
