"""Sphinx extension: launch buttons (Colab, Binder) on the homework pages.

sphinx-book-theme gives launch buttons only to pages that are notebooks; a
homework page is plain Markdown that links the student notebook released
beside it, ``book/homework/notebooks/<page>.ipynb`` (``tasks.py book`` writes
and commits it). This adds the same button group to the page, opening that
notebook, built from the same settings as the theme's own buttons:
``repository`` and ``launch_buttons`` of ``_config.yml``.
"""

from __future__ import annotations

from pathlib import Path

HOMEWORK_DIR = "book/homework"


def notebook_path(app, pagename: str) -> str | None:
    """Repository path of the student notebook of a homework page, if it exists."""
    if not pagename.startswith(HOMEWORK_DIR + "/"):
        return None
    relative = f"{HOMEWORK_DIR}/notebooks/{pagename.rsplit('/', 1)[1]}.ipynb"
    return relative if (Path(app.srcdir) / relative).is_file() else None


def launch_links(options: dict, repo_url: str, path: str) -> list[dict]:
    """The theme's button dicts for Binder and Colab, opening ``path`` of ``repo_url``."""
    launch = options.get("launch_buttons", {})
    branch = options.get("repository_branch") or "main"
    org_repo = repo_url.rstrip("/").split("github.com/")[-1]
    ui = {"classic": "tree", "jupyterlab": "lab/tree"}[launch.get("notebook_interface", "classic")]
    links = []
    if launch.get("binderhub_url"):
        url = f"{launch['binderhub_url'].rstrip('/')}/v2/gh/{org_repo}/{branch}?urlpath={ui}/{path}"
        links.append({"type": "link", "text": "Binder", "tooltip": "Launch on Binder",
                      "icon": "_static/images/logo_binder.svg", "url": url})
    if launch.get("colab_url"):
        url = f"{launch['colab_url'].rstrip('/')}/github/{org_repo}/blob/{branch}/{path}"
        links.append({"type": "link", "text": "Colab", "tooltip": "Launch on Colab",
                      "icon": "_static/images/logo_colab.png", "url": url})
    return links


def add_homework_launch(app, pagename, templatename, context, doctree) -> None:
    path = notebook_path(app, pagename)
    options = app.config.html_theme_options
    repo_url = options.get("repository_url", "")
    if path is None or "github.com/" not in repo_url or "header_buttons" not in context:
        return
    links = launch_links(options, repo_url, path)
    if links:
        context["header_buttons"].append({"type": "group", "tooltip": "Launch interactive content",
                                          "icon": "fas fa-rocket", "buttons": links, "label": "launch-buttons"})


def setup(app):
    # After the theme's own header buttons (priority 501), before the page is written.
    app.connect("html-page-context", add_homework_launch, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
