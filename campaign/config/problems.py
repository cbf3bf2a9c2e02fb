"""What is wrong with a campaign file and where: `Problem`, and `CampaignConfigError` that carries them.

`Problem` and the error's behaviour live in the core (`tandem.file_problems`), where an instrument
profile's loader finds them too; this is the campaign's own error type.
"""

from __future__ import annotations

from tandem.file_problems import FileProblemsError


class CampaignConfigError(FileProblemsError):
    """A campaign file that cannot run; `problems` holds every problem found, each with its place."""

    what = "campaign file"


__all__ = ["CampaignConfigError"]
