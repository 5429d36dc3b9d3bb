"""A FastAPI app with the OAuth2 password flow of its tutorial. $MODE:

memory   tokens kept in a dict of the process (the tutorial's fake token store)
shared   a signed token carrying the user (itsdangerous, key from the environment): stateless

Served by uvicorn: ``uvicorn fastapi_app:app --port $PORT``.
"""

import os
import secrets

from fastapi import Depends, FastAPI, Form, HTTPException
from fastapi.security import OAuth2PasswordBearer
from itsdangerous import BadSignature, URLSafeSerializer

MODE = os.environ.get("MODE", "shared")
app = FastAPI()
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token")
tokens: dict[str, str] = {}
signer = URLSafeSerializer(os.environ.get("SECRET_KEY", "dev-secret"))


@app.post("/token")
def token(username: str = Form(), password: str = Form()):
    if MODE == "memory":
        value = secrets.token_hex(16)
        tokens[value] = username
    else:
        value = signer.dumps({"sub": username})
    return {"access_token": value, "token_type": "bearer"}


def current_user(token: str = Depends(oauth2_scheme)) -> str:
    if MODE == "memory":
        user = tokens.get(token)
    else:
        try:
            user = signer.loads(token)["sub"]
        except BadSignature:
            user = None
    if user is None:
        raise HTTPException(status_code=401, detail="Invalid authentication credentials",
                            headers={"WWW-Authenticate": "Bearer"})
    return user


@app.get("/users/me")
def read_me(user: str = Depends(current_user)):
    return {"username": user}


@app.get("/users/me/items")
def read_items(user: str = Depends(current_user)):
    return [{"item_id": "Foo", "owner": user}]
