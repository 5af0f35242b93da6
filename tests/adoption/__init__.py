"""A minimal existing Django site that adopts the dbhealth app (issue 9).

It has its own DATABASES, its own app and admin, and none of this project's
``config/`` or demo: the tests prove the app drops into such a site.
"""
