"""Audio files: conversion, WAV headers."""
