"""The skeleton of a task-style HTTP API (private): DashScope and ModelScope.

Both take a bearer key, create an image task with one POST, report it on GET until it
is final, and answer with output URLs that must be downloaded at once. This base owns
that route; each vendor module keeps only what is its own:

* ``default_base_url`` and, for a vendor that can cancel, ``can_cancel`` and ``_cancel``;
* ``_error_from(response, job_id)``: its error replies as the project's exception tree
  (transport failures are mapped here, the same for every vendor);
* ``_reply(response, job_id)``: the part of a JSON reply it reads (the whole object, or
  DashScope's ``output``);
* ``_submit``, ``_poll``: endpoints, headers and reply shapes of the task API;
* ``_outputs(task_id, state, request, progress)``: the URLs of a finished task, raising
  the vendor's own failure;
* ``_prompt_sent`` / ``_seed_of``: what to record of each image.

The mechanics (deadline, polling, retries, cancel on timeout) are ``providers._polling``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import httpx

from providers._polling import TaskState, http_timeout, run_task
from providers.base import REDACTED, ImageProvider, ModelSpec, ProviderConfig, resumed_request
from providers.errors import ProviderError, ProviderUnavailable
from providers.types import GeneratedImage, GenerationRequest, ProgressFn, TaskHooks

__all__ = ["TaskApiProvider"]


class TaskApiProvider(ImageProvider):
    """An ``ImageProvider`` for a vendor whose images come from submit-then-poll HTTP tasks."""

    default_base_url: ClassVar[str]
    submit_path: ClassVar[str]           # the endpoint that creates an image task, under the base URL
    submit_headers: ClassVar[dict[str, str]] = {}   # besides the bearer key, e.g. the vendor's async switch
    noun: ClassVar[str] = "task"

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        self._auth = {"Authorization": f"Bearer {config.api_key}"}
        self._http = self._http_client(self.default_base_url, base_url=self._base_url(),
                                       timeout=http_timeout(config), follow_redirects=True)

    def _base_url(self) -> httpx.URL | str:
        """The API root; a vendor may check the configured one (``url_env``) here."""
        return self.config.base_url or self.default_base_url

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------------ errors and calls

    @contextmanager
    def _map_errors(self, job_id: str | None = None) -> Iterator[None]:
        """Translate httpx errors and the vendor's error replies into the project's tree, in one place."""
        try:
            yield
        except httpx.HTTPStatusError as exc:
            raise self._error_from(exc.response, job_id) from None
        except httpx.TimeoutException as exc:
            raise ProviderUnavailable(f"{self.vendor} did not answer in time.", provider=self.name,
                                      job_id=job_id) from exc
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"Could not reach {self.vendor} ({type(exc).__name__}).", provider=self.name,
                                      job_id=job_id) from exc

    @abstractmethod
    def _error_from(self, response: httpx.Response, job_id: str | None) -> ProviderError:
        """The vendor's HTTP error reply as a project error."""

    @abstractmethod
    def _reply(self, response: httpx.Response, job_id: str | None) -> dict[str, Any]:
        """The part of a successful reply the vendor module reads; ProviderUnavailable if it is missing."""

    def _json_object(self, response: httpx.Response) -> dict[str, Any] | None:
        try:
            body = response.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def _call(self, method: str, path: str, *, job_id: str | None = None, **kwargs: Any) -> dict[str, Any]:
        with self._map_errors(job_id):
            response = await self._http.request(method, path, **kwargs)
            response.raise_for_status()
        return self._reply(response, job_id)

    def _task_id(self, reply: dict[str, Any]) -> str:
        task_id = reply.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise ProviderUnavailable(f"{self.vendor} accepted the request but sent no task id.", provider=self.name)
        return task_id

    # ------------------------------------------------------------------ the task

    @abstractmethod
    async def _submit(self, payload: dict[str, Any]) -> tuple[str, TaskState]:
        """Create the task; (task id, what the vendor said of it)."""

    @abstractmethod
    async def _poll(self, task_id: str) -> TaskState: ...

    can_cancel: ClassVar[bool] = False   # True: the vendor defines ``_cancel``, sent on cancellation or timeout

    async def _cancel(self, task_id: str) -> None:
        raise NotImplementedError

    async def cancel_task(self, task_id: str) -> bool:
        if not self.can_cancel:
            return False
        await self._cancel(task_id)
        return True

    @abstractmethod
    async def _outputs(self, task_id: str, state: TaskState, request: GenerationRequest,
                       progress: ProgressFn) -> list[str]:
        """The output URLs of a final task; raises the vendor's failure when it has none."""

    def _prompt_sent(self, payload: dict[str, Any], request: GenerationRequest) -> str:
        return str(payload.get("prompt", request.prompt))

    def _seed_of(self, request: GenerationRequest) -> int | None:
        return request.seed

    def _payload(self, spec: ModelSpec, request: GenerationRequest) -> dict[str, Any]:
        return {"model": spec.provider_model, **spec.build(request)}

    def describe_calls(self, spec: ModelSpec, request: GenerationRequest) -> list[dict[str, Any]]:
        """One task: the JSON ``_submit`` would POST (references are https URLs, passed as given)."""
        url = str(self._http.base_url).rstrip("/") + self.submit_path
        return [{"method": "POST", "url": url, "model": spec.provider_model,
                 "headers": {"Authorization": f"Bearer {REDACTED}", **self.submit_headers},
                 "json": self._payload(spec, request)}]

    async def _generate(self, spec: ModelSpec, request: GenerationRequest, progress: ProgressFn,
                        hooks: TaskHooks | None = None) -> list[GeneratedImage]:
        payload = self._payload(spec, request)
        return await self._finish(spec, request, payload, lambda: self._submit(payload), progress, hooks)

    can_resume = True

    async def _resume(self, spec: ModelSpec, request: GenerationRequest, task_id: str, progress: ProgressFn,
                      hooks: TaskHooks | None) -> list[GeneratedImage]:
        """The task fetched by id (GET, the same as a poll), waited for and downloaded; nothing is submitted."""
        payload = self._payload(spec, resumed_request(request))

        async def fetch() -> tuple[str, TaskState]:
            return task_id, await self._poll(task_id)

        return await self._finish(spec, request, payload, fetch, progress, hooks)

    async def _finish(self, spec: ModelSpec, request: GenerationRequest, payload: dict[str, Any],
                      submit: Callable[[], Awaitable[tuple[str, TaskState]]], progress: ProgressFn,
                      hooks: TaskHooks | None) -> list[GeneratedImage]:
        task_id, state = await run_task(provider=self.name, vendor=self.vendor, config=self.config,
                                        submit=submit, poll=self._poll,
                                        cancel=self._cancel if self.can_cancel else None, progress=progress,
                                        noun=self.noun, hooks=hooks)
        images = []
        for url in await self._outputs(task_id, state, request, progress):
            images.append(await self.output_image(
                url, provider=self.name, provider_model=spec.provider_model,
                prompt_sent=self._prompt_sent(payload, request), parameters=payload,
                seed=self._seed_of(request), prediction_id=task_id))
        return images
