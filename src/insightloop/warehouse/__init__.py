"""insightloop.warehouse"""
