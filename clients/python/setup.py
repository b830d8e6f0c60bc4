# pip install ./clients/python  (standard library only; see README.md)
from setuptools import setup

setup(
    name="ngx-deferred",
    version="0.1.0",
    description="App Engine's deferred library for apps behind "
                "ngx_http_deferred_module",
    packages=["ngx_deferred"],
    python_requires=">=3.9",
)
