# SPDX-License-Identifier: MIT
# The wheel holds a compiled SQLite extension, which SQLite loads and Python
# never imports: it is platform-specific but suits every Python 3, so the
# wheel is tagged py3-none-<platform>, neither pure nor CPython-specific.
from setuptools import setup
from setuptools.dist import Distribution
from wheel.bdist_wheel import bdist_wheel


class BinaryDistribution(Distribution):
    """A distribution with a platform-specific file inside."""

    def has_ext_modules(self):
        return True


class PlatformWheel(bdist_wheel):
    """bdist_wheel with the tag py3-none-<platform>."""

    def get_tag(self):
        _, _, plat = super().get_tag()
        return "py3", "none", plat


setup(distclass=BinaryDistribution, cmdclass={"bdist_wheel": PlatformWheel})
