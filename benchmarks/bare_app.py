"""The floor's HTTP half: a bare endpoint that parses nothing and predicts nothing."""

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route


async def predict(request):
    await request.body()
    return Response(b'{"probability": 0.5}', media_type="application/json")


app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
