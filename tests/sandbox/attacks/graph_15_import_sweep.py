# attack: import sweep: 62 modules (stdlib, C accelerators, the sandbox's own packages, submodules of allowed names) that must all be refused
# expect: ok
def on_execute_send_phone_message(event, api):
    found = []
    try:
        import string as probe
        found.append("string")
    except Exception:
        pass
    try:
        import functools as probe
        found.append("functools")
    except Exception:
        pass
    try:
        import itertools as probe
        found.append("itertools")
    except Exception:
        pass
    try:
        import collections as probe
        found.append("collections")
    except Exception:
        pass
    try:
        import typing as probe
        found.append("typing")
    except Exception:
        pass
    try:
        import copy as probe
        found.append("copy")
    except Exception:
        pass
    try:
        import decimal as probe
        found.append("decimal")
    except Exception:
        pass
    try:
        import codecs as probe
        found.append("codecs")
    except Exception:
        pass
    try:
        import enum as probe
        found.append("enum")
    except Exception:
        pass
    try:
        import io as probe
        found.append("io")
    except Exception:
        pass
    try:
        import inspect as probe
        found.append("inspect")
    except Exception:
        pass
    try:
        import pickle as probe
        found.append("pickle")
    except Exception:
        pass
    try:
        import marshal as probe
        found.append("marshal")
    except Exception:
        pass
    try:
        import shelve as probe
        found.append("shelve")
    except Exception:
        pass
    try:
        import struct as probe
        found.append("struct")
    except Exception:
        pass
    try:
        import socket as probe
        found.append("socket")
    except Exception:
        pass
    try:
        import subprocess as probe
        found.append("subprocess")
    except Exception:
        pass
    try:
        import posix as probe
        found.append("posix")
    except Exception:
        pass
    try:
        import signal as probe
        found.append("signal")
    except Exception:
        pass
    try:
        import threading as probe
        found.append("threading")
    except Exception:
        pass
    try:
        import asyncio as probe
        found.append("asyncio")
    except Exception:
        pass
    try:
        import types as probe
        found.append("types")
    except Exception:
        pass
    try:
        import weakref as probe
        found.append("weakref")
    except Exception:
        pass
    try:
        import tempfile as probe
        found.append("tempfile")
    except Exception:
        pass
    try:
        import pathlib as probe
        found.append("pathlib")
    except Exception:
        pass
    try:
        import shutil as probe
        found.append("shutil")
    except Exception:
        pass
    try:
        import linecache as probe
        found.append("linecache")
    except Exception:
        pass
    try:
        import traceback as probe
        found.append("traceback")
    except Exception:
        pass
    try:
        import warnings as probe
        found.append("warnings")
    except Exception:
        pass
    try:
        import RestrictedPython as probe
        found.append("RestrictedPython")
    except Exception:
        pass
    try:
        import runtime as probe
        found.append("runtime")
    except Exception:
        pass
    try:
        import runtime.sandbox as probe
        found.append("runtime.sandbox")
    except Exception:
        pass
    try:
        import runtime.sandbox.guest.guards as probe
        found.append("runtime.sandbox.guest.guards")
    except Exception:
        pass
    try:
        import runtime.sandbox.guest.worker_loop as probe
        found.append("runtime.sandbox.guest.worker_loop")
    except Exception:
        pass
    try:
        import orjson as probe
        found.append("orjson")
    except Exception:
        pass
    try:
        import pydantic as probe
        found.append("pydantic")
    except Exception:
        pass
    try:
        import httpx as probe
        found.append("httpx")
    except Exception:
        pass
    try:
        import zlib as probe
        found.append("zlib")
    except Exception:
        pass
    try:
        import secrets as probe
        found.append("secrets")
    except Exception:
        pass
    try:
        import unicodedata as probe
        found.append("unicodedata")
    except Exception:
        pass
    try:
        import resource as probe
        found.append("resource")
    except Exception:
        pass
    try:
        import pyseccomp as probe
        found.append("pyseccomp")
    except Exception:
        pass
    try:
        import site as probe
        found.append("site")
    except Exception:
        pass
    try:
        import faulthandler as probe
        found.append("faulthandler")
    except Exception:
        pass
    try:
        import mmap as probe
        found.append("mmap")
    except Exception:
        pass
    try:
        import fcntl as probe
        found.append("fcntl")
    except Exception:
        pass
    try:
        import pwd as probe
        found.append("pwd")
    except Exception:
        pass
    try:
        import select as probe
        found.append("select")
    except Exception:
        pass
    try:
        import json.decoder as probe
        found.append("json.decoder")
    except Exception:
        pass
    try:
        import json.encoder as probe
        found.append("json.encoder")
    except Exception:
        pass
    try:
        import re._parser as probe
        found.append("re._parser")
    except Exception:
        pass
    try:
        import urllib.request as probe
        found.append("urllib.request")
    except Exception:
        pass
    try:
        import urllib.error as probe
        found.append("urllib.error")
    except Exception:
        pass
    try:
        import os.path as probe
        found.append("os.path")
    except Exception:
        pass
    try:
        import encodings as probe
        found.append("encodings")
    except Exception:
        pass
    try:
        import encodings.idna as probe
        found.append("encodings.idna")
    except Exception:
        pass
    try:
        import email as probe
        found.append("email")
    except Exception:
        pass
    try:
        import xml.sax as probe
        found.append("xml.sax")
    except Exception:
        pass
    try:
        import zipimport as probe
        found.append("zipimport")
    except Exception:
        pass
    try:
        import multiprocessing as probe
        found.append("multiprocessing")
    except Exception:
        pass
    try:
        import ast as probe
        found.append("ast")
    except Exception:
        pass
    try:
        import dis as probe
        found.append("dis")
    except Exception:
        pass
    if found:
        return "ESCAPED imported " + ", ".join(found)
    return "denied"
