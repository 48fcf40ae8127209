"""Strykr articles: parsing, the levels of their Strykr Watch, where they come from."""

from service.articles.instruments import DEFAULT_ALIASES, Instruments
from service.articles.parse import MAX_ARTICLE_BYTES, parse_article

__all__ = ["DEFAULT_ALIASES", "MAX_ARTICLE_BYTES", "Instruments", "parse_article"]
