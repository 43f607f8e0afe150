"""insightloop.ops"""
