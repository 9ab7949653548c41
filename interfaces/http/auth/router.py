from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, status

from application.auth.log_in import LogIn, LogInCommand
from application.auth.log_out import LogOut, LogOutCommand
from application.auth.refresh_session import RefreshSession, RefreshSessionCommand
from application.auth.register_user import RegisterUser, RegisterUserCommand
from application.auth.tokens import TokenPair
from interfaces.container import Container
from interfaces.http.auth.schemas import LogoutRequest, RefreshRequest, RegisterRequest, TokenResponse
from interfaces.http.context import client_address
from interfaces.http.dependencies import provided
from interfaces.http.errors import problem_responses
from interfaces.http.users.schemas import UserResponse

router = APIRouter(prefix="/auth", tags=["auth"])


def _tokens(pair: TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        token_type=pair.token_type,
        expires_in=pair.expires_in,
    )


@router.post(
    "/register", status_code=status.HTTP_201_CREATED, responses=problem_responses(400, 409, 413, 422), summary="Sign up"
)
async def register(
    body: RegisterRequest, use_case: RegisterUser = Depends(provided(Container.register_user))
) -> UserResponse:
    user = await use_case.execute(RegisterUserCommand(email=body.email, password=body.password))
    return UserResponse.of(user)


@router.post("/token", responses=problem_responses(400, 401, 413, 422, 429), summary="Log in (OAuth2 password flow)")
async def token(
    request: Request,
    # min_length=1: an empty form field arrives as a missing one, so the document must not promise to accept it.
    username: Annotated[str, Form(min_length=1, max_length=320, description="The account's email.")],
    password: Annotated[str, Form(min_length=1, max_length=1024)],
    use_case: LogIn = Depends(provided(Container.log_in)),
) -> TokenResponse:
    # Failures are counted per client: behind a trusted proxy the forwarded client, never the proxy itself.
    command = LogInCommand(email=username, password=password, client_address=client_address(request))
    return _tokens(await use_case.execute(command))


@router.post("/refresh", responses=problem_responses(400, 401, 413, 422), summary="Rotate a refresh token")
async def refresh(
    body: RefreshRequest, use_case: RefreshSession = Depends(provided(Container.refresh_session))
) -> TokenResponse:
    return _tokens(await use_case.execute(RefreshSessionCommand(refresh_token=body.refresh_token)))


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 401, 413, 422),
    summary="End the session of a refresh token",
)
async def logout(body: LogoutRequest, use_case: LogOut = Depends(provided(Container.log_out))) -> None:
    await use_case.execute(LogOutCommand(refresh_token=body.refresh_token))
