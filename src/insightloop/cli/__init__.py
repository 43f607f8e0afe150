"""insightloop.cli"""
