"""Build script for the optional compiled kernel (everything else is in pyproject.toml).

``harmonykit.operators.labkernel`` speeds up the full-resolution CIELAB apply; it is
``optional``: where no C compiler is available the build skips it with a warning and
harmonykit uses its PyTorch kernel (same results within one grey level).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "harmonykit.operators.labkernel",
            ["src/harmonykit/operators/labkernel.c"],
            optional=True,
            extra_compile_args=["-O3"],
        )
    ]
)
