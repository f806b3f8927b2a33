"""Prediction sets: named detection runs saved inside a data set's folder.
"""
