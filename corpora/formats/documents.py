"""Collect documents from data files: content-derived ids and de-duplication on title + text."""

from __future__ import annotations

import hashlib
import re

from corpora.formats.errors import format_error
from corpora.records import Document, dedup_documents

_NON_WORD = re.compile(r"\W+")


def content_doc_id(title: str, text: str) -> str:
    """Return a readable id that depends only on the content: ``"Neil_Peart#1a2b3c4d"``.

    The title slug keeps ids readable; the 8-hex-digit hash of title and text keeps them unique
    and stable whichever files or options a corpus was loaded with.
    """
    slug = _NON_WORD.sub("_", title).strip("_")[:48] or "doc"
    digest = hashlib.sha256(f"{title}\n{text}".encode()).hexdigest()[:8]
    return f"{slug}#{digest}"


class DocumentPool:
    """Paragraphs of datasets without document ids, given content ids and de-duplicated."""

    def __init__(self) -> None:
        self._docs: list[Document] = []

    def add(self, title: str, text: str) -> str:
        """Add a paragraph (title and text are stripped) and return its document id."""
        title, text = title.strip(), text.strip()
        doc = Document(content_doc_id(title, text), title, text)
        self._docs.append(doc)
        return doc.doc_id

    def documents(self) -> tuple[Document, ...]:
        """Return the distinct documents, in order of first appearance."""
        return dedup_documents(self._docs)


class SourcedDocuments:
    """Documents that carry their own ids in the data, de-duplicated on title + text.

    When two ids hold the same title and text, the first id is kept and the later one becomes an
    alias of it, so that references to either (qrels, supporting ids) still resolve.
    """

    def __init__(self) -> None:
        self._docs: list[Document] = []
        self._where: dict[str, str] = {}

    def add(self, doc_id: str, title: str, text: str, where: str) -> None:
        """Add a document read at location ``where``.

        A repeated id, or a document with neither title nor text, is a format error.
        """
        if not (title.strip() or text.strip()):
            raise format_error(
                where, f"document {doc_id!r} has neither title nor text", "fill it or remove it"
            )
        if doc_id in self._where:
            raise format_error(
                where,
                f"duplicate document id {doc_id!r} (first at {self._where[doc_id]})",
                "give every document its own id",
            )
        self._where[doc_id] = where
        self._docs.append(Document(doc_id, title.strip(), text.strip()))

    def build(self) -> tuple[tuple[Document, ...], dict[str, str]]:
        """Return the distinct documents and a map from every known id to the id kept for it."""
        kept = dedup_documents(self._docs)
        first = {(doc.title, doc.text): doc.doc_id for doc in kept}
        return kept, {doc.doc_id: first[(doc.title, doc.text)] for doc in self._docs}
