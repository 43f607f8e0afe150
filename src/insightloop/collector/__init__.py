"""insightloop.collector"""
